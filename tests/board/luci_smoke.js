// tests/board/luci_smoke.js VIEW.js...: run each LuCI view of luci-app-kotak
// in node against small stand-ins of LuCI's runtime (view, form, rpc, ui,
// poll, E, _, String.format) and kotak's answers, through load() and
// render(), and for the form views through each option's validate().  It
// catches what node --check cannot: a misspelt name, a call on undefined,
// a validator that throws.  Prints PASS/FAIL lines.
'use strict';
const fs = require('fs');
const path = require('path');

const answers = {
	status: { running: true, pid: 42, uptime: 3600, version: '0.1.0', features: '+smtp +rpc', hostname: 'mail.lan',
		sessions: { smtp: 2, pop3: 1 }, listeners: [ { proto: 'smtp', address: '0.0.0.0', port: 25, open: true } ],
		errors: [ { time: 1800000000, text: 'a warning' } ], queue: { messages: 1, deferred: 1, oldest_age: 60 },
		disk: { path: '/srv/kotak', free: 1e9, total: 2e9 },
		certificate: { path: '/srv/kotak/tls/cert.pem', subject: 'CN=mail.lan', not_after: 2e9, expired: false, sha256: 'AA:BB' } },
	config_check: { ok: true, output: 'kotak: /etc/config/kotak: ok\n' },
	user_list: { users: [ 'admin', 'alice' ] },
	queue_list: { queue: [ { id: '6b1566ee713e3e68', arrival: 1800000000, size: 1234, sender: 'a@b.c', next_attempt: 1800000300,
		recipients: [ { address: 'x@y.z', user: null, remote: true } ] } ] },
	test_mail: { id: '6b1566ee713e3e68' }
};
const calls = [];

// a DOM element stand-in: enough for E(), appendChild, innerHTML
function Node(tag, attrs, kids) {
	this.tag = tag;
	this.attrs = attrs || {};
	this.children = [];
	this.style = {};
	this.value = '';
	[].concat(kids === undefined ? [] : kids).forEach((k) => this.appendChild(k));
}
Node.prototype.appendChild = function(k) { if (k !== null && k !== '') this.children.push(k); return k; };
Object.defineProperty(Node.prototype, 'innerHTML', { set: function() { this.children = []; } });
const byId = {};
global.document = { getElementById: (id) => byId[id] || null };
global.window = { setTimeout: (f) => f() };
global.confirm = () => true;
global.location = { reload: () => {} };
function E(tag, attrs, kids) {
	if (typeof attrs !== 'object' || Array.isArray(attrs) || attrs instanceof Node) { kids = attrs; attrs = {}; }
	const n = new Node(tag, attrs, kids);
	if (attrs && attrs.id)
		byId[attrs.id] = n;
	return n;
}
function _(s) { return s; }
// LuCI's String.prototype.format, the conversions the views use
String.prototype.format = function() {
	let i = 0;
	const a = arguments;
	return this.replace(/%(\d*)(?:\.\d+)?([sdm])/g, (m, w, c) => {
		const v = a[i++];
		if (v === undefined)
			throw new Error('format: too few arguments for ' + this);
		return c === 'd' ? String(Math.floor(v)) : String(v);
	});
};
const L = { bind: (f, self) => f.bind(self) };
const rpc = {
	declare: (d) => function() {
		if (d.object !== 'kotak')
			throw new Error('object ' + d.object);
		calls.push(d.method);
		return Promise.resolve(answers[d.method] || { ok: true });
	}
};
const ui = { addNotification: () => {}, createHandlerFn: (self, f) => f.bind(self) };
const poll = { add: (f) => { poll.fns.push(f); }, fns: [] };
const view = { extend: (o) => o };

// form: records sections and options; render() runs every validator on
// sample values (the empty one too), as LuCI does on input
const options = [];
class Option {
	constructor(kind, name) { this.kind = kind; this.name = name; this.values = []; }
	value(v) { this.values.push(v); }
	depends() {}
}
class Section {
	constructor(kind, type) { this.kind = kind; this.type = type; }
	tab() {}
	option(kind, name) { const o = new Option(kind, name); options.push(o); return o; }
	taboption(tab, kind, name) { return this.option(kind, name); }
}
class FMap {
	constructor(config) { if (config !== 'kotak') throw new Error('map of ' + config); }
	section(kind, type) { return new Section(kind, type); }
	render() {
		for (const o of options) {
			if (o.validate)
				for (const v of [ '', 'mail.lan', '/srv/kotak', 'a\nb', "it's", '192.168.1.0/24' ]) {
					const r = o.validate('cfg01', v);
					if (r !== true && typeof r !== 'string')
						throw new Error(o.name + '.validate returned ' + r);
				}
			if (o.cfgvalue)
				o.cfgvalue('cfg01');
			if (o.write)
				o.write('cfg01', 'x');
		}
		return Promise.resolve(E('div'));
	}
}
const form = { Map: FMap, TypedSection: 'TypedSection', GridSection: 'GridSection', NamedSection: 'NamedSection',
	Flag: 'Flag', Value: 'Value', ListValue: 'ListValue', DynamicList: 'DynamicList' };

(async function() {
	let failed = 0;
	for (const file of process.argv.slice(2)) {
		const name = path.basename(file, '.js');
		options.length = 0;
		calls.length = 0;
		poll.fns.length = 0;
		try {
			const src = fs.readFileSync(file, 'utf8');
			const v = new Function('L', 'E', '_', 'view', 'form', 'rpc', 'ui', 'poll', src)(L, E, _, view, form, rpc, ui, poll);
			const data = v.load ? await v.load() : undefined;
			const dom = await v.render(data);
			if (!dom)
				throw new Error('render returned nothing');
			for (const f of poll.fns)
				await f();
			// press every button the view made
			const press = async (n) => {
				if (!(n instanceof Node))
					return;
				if (n.tag === 'button' && typeof n.attrs.click === 'function')
					await n.attrs.click();
				for (const k of n.children)
					await press(k);
			};
			await press(dom);
			console.log('PASS luci view %s runs (calls: %s; options: %d)', name, [ ...new Set(calls) ].join(' ') || '-', options.length);
		} catch (e) {
			failed++;
			console.log('FAIL luci view %s: %s', name, (e && e.stack || String(e)).split('\n').slice(0, 3).join(' | '));
		}
	}
	process.exitCode = failed ? 1 : 0;
})();
