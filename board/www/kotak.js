// kotak's plain web page, for routers without LuCI: the pages of
// luci-app-kotak on `kotak rpc`, through cgi-bin/kotak.  Plain JavaScript,
// no framework, nothing loaded from elsewhere.  The config is read and
// written whole as UCI text (config_get, config_set); kotak checks a new
// one with `kotak -t` before it replaces the old, and reloads.
'use strict';

var $ = function (id) { return document.getElementById(id); };
var config = [];	// sections of the config file: {type, name, opts, order}

function el(tag, props, kids) {
	var e = document.createElement(tag);
	Object.keys(props || {}).forEach(function (k) {
		if (k === 'text') e.textContent = props[k];
		else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), props[k]);
		else e.setAttribute(k, props[k]);
	});
	(kids || []).forEach(function (c) { if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
	return e;
}

function call(method, args) {
	// (from the origin: a page opened as http://user:pw@host/ must not
	// resolve a relative URL with the credentials in it)
	return fetch(location.origin + location.pathname.replace(/[^/]*$/, '') + 'cgi-bin/kotak?' + method, {
		method: 'POST', credentials: 'same-origin',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify(args || {})
	}).then(function (r) {
		if (!r.ok) throw new Error('HTTP ' + r.status + ' from cgi-bin/kotak');
		return r.json();
	}).then(function (o) {
		if (o.error) {
			var e = new Error(o.error);
			e.output = o.output;
			throw e;
		}
		return o;
	});
}

function say(text, bad) {
	var m = $('msg');
	m.textContent = text;
	m.className = bad ? 'bad' : 'good';
}
function failed(e) { say(e.message + (e.output ? ': ' + e.output : ''), true); }

/* ---- the config file, as uci and kotak read it: `config TYPE [NAME]`,
 * `option K V`, `list K V`; values bare, 'single' or "double" quoted
 * (backslash escapes inside double quotes); # comments. */
function uciWords(line) {
	var w = [], cur = null, i = 0, c, q;
	while (i < line.length) {
		c = line[i];
		if (c === ' ' || c === '\t' || c === '\r') {
			if (cur !== null) w.push(cur);
			cur = null;
			i++;
			continue;
		}
		if (cur === null && c === '#') break;
		if (cur === null) cur = '';
		if (c === "'" || c === '"') {
			for (q = c, i++; i < line.length && line[i] !== q; i++) {
				if (q === '"' && line[i] === '\\' && i + 1 < line.length) i++;
				cur += line[i];
			}
			if (i >= line.length) throw new Error('unterminated quote in: ' + line);
			i++;
			continue;
		}
		cur += c;
		i++;
	}
	if (cur !== null) w.push(cur);
	return w;
}

function uciParse(text) {
	var secs = [], s = null;
	text.split('\n').forEach(function (line) {
		var w = uciWords(line);
		if (w[0] === 'config' && w.length >= 2) {
			s = { type: w[1], name: w[2] || '', opts: {} };
			secs.push(s);
		} else if (s && w.length === 3 && w[0] === 'list') {
			if (!Array.isArray(s.opts[w[1]])) s.opts[w[1]] = [];
			s.opts[w[1]].push(w[2]);
		} else if (s && w.length === 3 && w[0] === 'option') {
			s.opts[w[1]] = w[2];
		}
	});
	return secs;
}

// What kotak cannot store: control characters (CR, LF, NUL ...) and '.
function storable(v) { return !/[\x00-\x1f\x7f']/.test(v); }

function uciText(secs) {
	var out = [];
	secs.forEach(function (s) {
		out.push('', 'config ' + s.type + (s.name ? " '" + s.name + "'" : ''));
		Object.keys(s.opts).forEach(function (k) {
			var v = s.opts[k], list = Array.isArray(v);
			(list ? v : [v]).forEach(function (x) {
				if (x === '' || x == null) return;
				if (!storable(x)) throw new Error(k + ": control characters and ' cannot be stored");
				out.push('\t' + (list ? 'list ' : 'option ') + k + " '" + x + "'");
			});
		});
	});
	return out.join('\n').replace(/^\n/, '') + '\n';
}

function loadConfig() {
	return call('config_get').then(function (o) { config = uciParse(o.config); });
}
function main() {
	var m = config.filter(function (s) { return s.type === 'kotak'; })[0];
	if (!m) {
		m = { type: 'kotak', name: 'main', opts: {} };
		config.unshift(m);
	}
	return m;
}
function saveConfig(outId) {
	var text;
	try {
		text = uciText(config);
	} catch (e) {
		return Promise.reject(e);
	}
	return call('config_set', { config: text }).then(function (o) {
		say(o.reloaded ? 'Saved; kotak reloaded it.' : 'Saved (kotak is not running).');
		if (outId) $(outId).textContent = '';
	}, function (e) {
		if (outId) $(outId).textContent = e.output || '';
		throw e;
	});
}

/* ---- validation: what kotak's config reader refuses ---- */
var IP4 = '(25[0-5]|2[0-4]\\d|1?\\d?\\d)(\\.(25[0-5]|2[0-4]\\d|1?\\d?\\d)){3}';
var IP6 = '[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*';
var check = {
	host: function (v) { return /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v) || 'a host name: letters, digits, . and -'; },
	ip: function (v) { return new RegExp('^(' + IP4 + '|' + IP6 + ')$').test(v) || 'an IPv4 or IPv6 address'; },
	net: function (v) {
		return new RegExp('^(' + IP4 + '(/([12]?\\d|3[0-2]))?|' + IP6 + '(/(\\d{1,2}|1[01]\\d|12[0-8]))?)$').test(v) ||
			'an address or network (192.168.1.0/24, fd00::/8)';
	},
	hostport: function (v) {
		return /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(v) || 'host, host:port or [IPv6]:port';
	},
	path: function (v) { return (/^\//.test(v) && storable(v)) || 'an absolute path'; },
	text: function (v) { return storable(v) || "no control characters or '"; },
	int: function (lo, hi) {
		return function (v) { return (/^\d+$/.test(v) && +v >= lo && +v <= hi) || 'a number from ' + lo + ' to ' + hi; };
	},
	one: function (vals) {
		var f = function (v) { return vals.indexOf(v) >= 0 || vals.join(', '); };
		f.choices = vals;
		return f;
	}
};

// [option, label, check, list?, hint]
var FIELDS = [
	['enabled', 'Enabled', check.one(['0', '1']), false, '1: the init script starts kotak at boot'],
	['hostname', 'Host name', check.host, false, 'in the greeting and Received: headers'],
	['domain', 'Local domains', check.host, true, 'one per line: mail to user@domain is kept here'],
	['data_dir', 'Data directory', check.path, false, 'queue and mailboxes; a restart applies a change'],
	['relay_net', 'Relay networks', check.net, true, 'clients that may send to other domains without a login'],
	['cleartext_auth_net', 'Cleartext login networks', check.net, true, 'clients that may log in without TLS'],
	['smarthost', 'Smarthost', check.hostport, false, 'send all outgoing mail through this host (else each domain\'s MX)'],
	['smarthost_tls', 'Smarthost TLS', check.one(['auto', 'implicit', 'starttls']), false, 'auto, implicit or starttls'],
	['smarthost_user', 'Smarthost login', check.text, false, ''],
	['smarthost_password_file', 'Smarthost password file', check.path, false, 'set the password below'],
	['smarthost_verify', 'Verify the smarthost', check.one(['0', '1']), false, '1: its certificate must chain to ca_file'],
	['cert', 'TLS certificate', check.path, false, 'PEM; empty: a self-signed one in data_dir/tls'],
	['key', 'TLS key', check.path, false, 'PEM; empty: in the certificate file'],
	['max_message_size', 'Largest message (bytes)', check.int(1024, 1099511627776), false, ''],
	['max_recipients', 'Recipients per message', check.int(1, 1000), false, ''],
	['max_sessions', 'Sessions', check.int(1, 128), false, ''],
	['max_sessions_per_ip', 'Sessions per address', check.int(1, 128), false, ''],
	['timeout', 'Command timeout (s)', check.int(1, 86400), false, ''],
	['log', 'Log to', check.one(['stderr', 'syslog']), false, 'stderr or syslog']
];
var PROTOS = ['smtp', 'submission', 'smtps', 'pop3', 'pop3s'];

// Mark input i with the result of fn on each of its values; true if good.
function validate(input, fn, list) {
	var vals = list ? input.value.split(/[\s,]+/).filter(Boolean) : [input.value.trim()];
	var bad = vals.map(function (v) { return v === '' ? true : fn(v); }).filter(function (r) { return r !== true; });
	input.classList.toggle('bad', bad.length > 0);
	if (input.nextSibling && input.nextSibling.className === 'err') input.parentNode.removeChild(input.nextSibling);
	if (bad.length) input.parentNode.insertBefore(el('span', { 'class': 'err', text: bad[0] }), input.nextSibling);
	return !bad.length;
}

/* ---- pages ---- */
function fmtAge(s) {
	if (s == null) return '-';
	return s < 120 ? s + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : s < 172800 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' days';
}
function fmtBytes(n) {
	return n < 1e6 ? Math.round(n / 1e3) + ' kB' : n < 1e9 ? Math.round(n / 1e6) + ' MB' : (n / 1e9).toFixed(1) + ' GB';
}
function fmtTime(t) { return new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z/, 'Z'); }

function showStatus() {
	return Promise.all([call('status'), call('config_check')]).then(function (r) {
		var st = r[0], ck = r[1], rows = [], tb = $('status-table').tBodies[0], sess;
		sess = Object.keys(st.sessions || {}).map(function (p) { return p + ' ' + st.sessions[p]; }).join(', ');
		rows.push(['kotak', el('span', { 'class': st.running ? 'ok' : 'no', id: 'st-running',
			text: st.running ? 'running (pid ' + st.pid + ', up ' + fmtAge(st.uptime) + ')' : 'not running' })]);
		rows.push(['Version', st.version + ' (' + st.features + ')']);
		rows.push(['Host name', st.hostname]);
		rows.push(['Sessions', sess || '-']);
		rows.push(['Listeners', (st.listeners || []).map(function (l) {
			return l.proto + ' ' + l.address + ':' + l.port + (l.open ? '' : ' (closed)');
		}).join(', ') || '-']);
		rows.push(['Queue', el('span', { id: 'st-queue', text: st.queue.messages + ' messages, ' + st.queue.deferred +
			' waiting for a retry, oldest ' + fmtAge(st.queue.oldest_age) })]);
		if (st.disk) rows.push(['Disk (' + st.disk.path + ')', fmtBytes(st.disk.free) + ' free of ' + fmtBytes(st.disk.total)]);
		if (st.certificate) rows.push(['Certificate', st.certificate.error || (st.certificate.subject + ', valid until ' +
			fmtTime(st.certificate.not_after) + (st.certificate.expired ? ' (EXPIRED)' : '') + '\nSHA-256 ' + st.certificate.sha256)]);
		rows.push(['Config', el('span', { 'class': ck.ok ? 'ok' : 'no', text: ck.output.trim() })]);
		tb.textContent = '';
		rows.forEach(function (r) { tb.appendChild(el('tr', {}, [el('th', { text: r[0] }), el('td', {}, [r[1]])])); });
		$('status-errors').textContent = '';
		(st.errors || []).forEach(function (e) {
			$('status-errors').appendChild(el('li', { text: fmtTime(e.time) + '  ' + e.text }));
		});
		if (!(st.errors || []).length) $('status-errors').appendChild(el('li', { text: 'none' }));
	});
}

function showSettings() {
	return loadConfig().then(function () {
		var m = main(), box = $('settings-fields'), tb = $('listen-table').tBodies[0];
		box.textContent = '';
		FIELDS.forEach(function (f) {
			var v = m.opts[f[0]], input;
			v = Array.isArray(v) ? v.join('\n') : (v || '');
			input = f[3] ? el('textarea', { id: 'set-' + f[0], rows: 2 }) : f[2].choices ?
				el('select', { id: 'set-' + f[0] }, [''].concat(f[2].choices).map(function (c) {
					return el('option', { value: c, text: c || '(default)' });
				})) : el('input', { id: 'set-' + f[0] });
			input.value = v;
			input.addEventListener('change', function () {
				validate(input, f[2], f[3]);
				if (f[0] === 'data_dir') dataDirHint(input);
			});
			box.appendChild(el('div', { 'class': 'field' }, [el('label', { 'for': 'set-' + f[0], text: f[1] }), input,
				el('span', { 'class': 'hint', id: 'hint-' + f[0], text: f[4] })]));
			if (f[0] === 'data_dir') dataDirHint(input);
		});
		tb.textContent = '';
		config.filter(function (s) { return s.type === 'listen'; }).forEach(function (s) { listenRow(s.opts); });
	});
}

function dataDirHint(input) {
	var h = $('hint-data_dir');
	var ram = /^\/(tmp|var|run|dev)(\/|$)/.test(input.value);
	h.textContent = ram ? 'WARNING: ' + input.value + ' is in RAM on OpenWrt: mail kept there is lost at reboot' :
		'queue and mailboxes; keep it on persistent storage (a restart applies a change)';
	h.className = 'hint' + (ram ? ' warn' : '');
}

function listenRow(o) {
	var sel = el('select', {}, PROTOS.map(function (p) { return el('option', { value: p, text: p }); }));
	var addr = el('input', { placeholder: '0.0.0.0' }), port = el('input', { placeholder: 'default', size: 6 });
	var tr = el('tr', {}, [el('td', {}, [sel]), el('td', {}, [addr]), el('td', {}, [port]),
		el('td', {}, [el('button', { type: 'button', text: 'Remove', onclick: function () { tr.parentNode.removeChild(tr); } })])]);
	sel.value = o.proto || 'smtp';
	addr.value = o.address || '';
	port.value = o.port || '';
	$('listen-table').tBodies[0].appendChild(tr);
}

function saveSettings(ev) {
	ev.preventDefault();
	var m = main(), good = true, listens = [];
	FIELDS.forEach(function (f) {
		var input = $('set-' + f[0]);
		if (!validate(input, f[2], f[3])) good = false;
		var v = f[3] ? input.value.split(/[\s,]+/).filter(Boolean) : input.value.trim();
		if (f[3] ? v.length : v !== '') m.opts[f[0]] = v;
		else delete m.opts[f[0]];
	});
	Array.prototype.forEach.call($('listen-table').tBodies[0].rows, function (tr) {
		var i = tr.querySelectorAll('input'), o = { proto: tr.querySelector('select').value };
		if (i[0].value.trim()) { good = validate(i[0], check.ip) && good; o.address = i[0].value.trim(); }
		if (i[1].value.trim()) { good = validate(i[1], check.int(1, 65535)) && good; o.port = i[1].value.trim(); }
		listens.push({ type: 'listen', name: '', opts: o });
	});
	if (!good) return say('Some values are not valid: see the fields marked red.', true);
	config = config.filter(function (s) { return s.type !== 'listen'; });
	config.splice.apply(config, [config.indexOf(m) + 1, 0].concat(listens));
	saveConfig('settings-output').then(showSettings).catch(failed);
}

function showUsers() {
	return call('user_list').then(function (o) {
		var tb = $('user-table').tBodies[0];
		tb.textContent = '';
		o.users.forEach(function (u) {
			var pw = el('input', { type: 'password', autocomplete: 'new-password', placeholder: 'new password' });
			tb.appendChild(el('tr', { 'data-user': u }, [el('td', { text: u }), el('td', {}, [pw,
				el('button', { type: 'button', text: 'Set', onclick: function () {
					call('user_passwd', { name: u, password: pw.value }).then(function () {
						pw.value = '';
						say('Password of ' + u + ' changed.');
					}).catch(failed);
				} })]),
				el('td', {}, [el('button', { type: 'button', text: 'Delete', onclick: function () {
					if (!confirm('Delete user ' + u + '? The mailbox stays on disk.')) return;
					call('user_del', { name: u }).then(function () { say('User ' + u + ' deleted.'); return showUsers(); }).catch(failed);
				} })])]));
		});
	});
}

function addUser(ev) {
	ev.preventDefault();
	var n = $('user-name').value.trim(), p = $('user-pass').value;
	call('user_add', { name: n, password: p }).then(function (o) {
		$('user-name').value = $('user-pass').value = '';
		say('User ' + n + ' added' + (o.reloaded ? '; kotak reloaded its users.' : '.'));
		return showUsers();
	}).catch(failed);
}

function showAliases() {
	return loadConfig().then(function () {
		var tb = $('alias-table').tBodies[0];
		tb.textContent = '';
		config.filter(function (s) { return s.type === 'alias'; }).forEach(function (s) {
			aliasRow(s.opts.name || '', [].concat(s.opts.to || []).join(', '));
		});
	});
}

function aliasRow(name, to) {
	var n = el('input', { value: name, placeholder: 'name' }), t = el('input', { value: to, size: 40 });
	var tr = el('tr', {}, [el('td', {}, [n]), el('td', {}, [t]),
		el('td', {}, [el('button', { type: 'button', text: 'Remove', onclick: function () { tr.parentNode.removeChild(tr); } })])]);
	$('alias-table').tBodies[0].appendChild(tr);
}

function saveAliases() {
	var good = true, aliases = [];
	Array.prototype.forEach.call($('alias-table').tBodies[0].rows, function (tr) {
		var i = tr.querySelectorAll('input'), name = i[0].value.trim();
		var to = i[1].value.split(/[\s,]+/).filter(Boolean);
		good = validate(i[0], function (v) { return (/^[^\s@]+$/.test(v) && storable(v)) || 'a local name, no @'; }) && good;
		good = validate(i[1], function (v) { return (/^[^\s<>,;"\\()[\]]+$/.test(v) && storable(v)) || 'user or address'; }, true) && good;
		if (!to.length) good = validate(i[1], function () { return 'at least one target'; }) && false;
		aliases.push({ type: 'alias', name: '', opts: { name: name, to: to } });
	});
	if (!good) return say('Some aliases are not valid: see the fields marked red.', true);
	loadConfig().then(function () {
		config = config.filter(function (s) { return s.type !== 'alias'; }).concat(aliases);
		return saveConfig();
	}).then(showAliases).catch(failed);
}

function showQueue() {
	return call('queue_list').then(function (o) {
		var tb = $('queue-table').tBodies[0], now = Date.now() / 1000;
		tb.textContent = '';
		o.queue.forEach(function (m) {
			tb.appendChild(el('tr', { 'data-id': m.id }, [el('td', { text: m.id }), el('td', { text: fmtTime(m.arrival) }),
				el('td', { text: fmtBytes(m.size) }), el('td', { text: m.sender || '<>' }),
				el('td', { text: m.recipients.map(function (r) { return r.address; }).join(', ') }),
				el('td', { text: m.next_attempt > now ? fmtTime(m.next_attempt) : 'now' }),
				el('td', {}, [el('button', { type: 'button', text: 'Delete', onclick: function () {
					if (!confirm('Delete message ' + m.id + ' from the queue? It is not delivered nor bounced.')) return;
					call('queue_del', { id: m.id }).then(function () { say('Message ' + m.id + ' deleted.'); return showQueue(); }).catch(failed);
				} })])]));
		});
		if (!o.queue.length) tb.appendChild(el('tr', {}, [el('td', { colspan: 7, text: 'The queue is empty.' })]));
	});
}

var pages = { status: showStatus, settings: showSettings, users: showUsers, aliases: showAliases, queue: showQueue };
function route() {
	var p = (location.hash || '#status').slice(1);
	if (!pages[p]) p = 'status';
	Array.prototype.forEach.call(document.querySelectorAll('.page'), function (s) { s.classList.toggle('on', s.id === p); });
	Array.prototype.forEach.call(document.querySelectorAll('nav a'), function (a) { a.classList.toggle('on', a.hash === '#' + p); });
	pages[p]().catch(failed);
}

window.addEventListener('hashchange', function () { say(''); route(); });
$('settings-form').addEventListener('submit', saveSettings);
$('listen-add').addEventListener('click', function () { listenRow({}); });
$('user-form').addEventListener('submit', addUser);
$('alias-add').addEventListener('click', function () { aliasRow('', ''); });
$('alias-save').addEventListener('click', saveAliases);
$('queue-flush').addEventListener('click', function () {
	call('queue_flush').then(function () { say('kotak retries every queued message now.'); }).catch(failed);
});
$('queue-reload').addEventListener('click', function () { showQueue().catch(failed); });
$('test-form').addEventListener('submit', function (ev) {
	ev.preventDefault();
	call('test_mail', { to: $('test-to').value.trim() }).then(function (o) {
		say('Test message queued as ' + o.id + '.');
		return showStatus();
	}).catch(failed);
});
$('shpw-form').addEventListener('submit', function (ev) {
	ev.preventDefault();
	call('smarthost_password', { password: $('shpw').value }).then(function () {
		$('shpw').value = '';
		say('Smarthost password written; kotak reloaded it.');
	}).catch(failed);
});
// the status page follows kotak every 5 s while it is shown
setInterval(function () { if ($('status').classList.contains('on') && !document.hidden) showStatus().catch(failed); }, 5000);
route();
