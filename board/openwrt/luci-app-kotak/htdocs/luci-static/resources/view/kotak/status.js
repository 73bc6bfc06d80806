'use strict';
'require view';
'require rpc';
'require poll';
'require ui';

// kotak's status, polled every 5 s: `kotak rpc call status` through rpcd.
var callStatus = rpc.declare({ object: 'kotak', method: 'status' });
var callCheck = rpc.declare({ object: 'kotak', method: 'config_check' });
var callTestMail = rpc.declare({ object: 'kotak', method: 'test_mail', params: [ 'to' ] });

function age(s) {
	if (s == null)
		return '-';
	return s < 120 ? s + ' s' : s < 7200 ? Math.round(s / 60) + ' min' :
		s < 172800 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' ' + _('days');
}

function when(t) {
	return new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function rows(st, ck) {
	var r = [], c = st.certificate;
	r.push([ _('kotak'), E('strong', { 'style': 'color:' + (st.running ? 'green' : '#c00') },
		st.running ? _('running (pid %d, up %s)').format(st.pid, age(st.uptime)) : _('not running')) ]);
	r.push([ _('Version'), '%s (%s)'.format(st.version, st.features) ]);
	r.push([ _('Host name'), st.hostname ]);
	r.push([ _('Sessions'), Object.keys(st.sessions || {}).map(function(p) { return p + ' ' + st.sessions[p]; }).join(', ') || '-' ]);
	r.push([ _('Listeners'), (st.listeners || []).map(function(l) {
		return '%s %s:%d%s'.format(l.proto, l.address, l.port, l.open ? '' : ' (' + _('closed') + ')');
	}).join(', ') || '-' ]);
	r.push([ _('Queue'), _('%d messages, %d waiting for a retry, oldest %s').format(st.queue.messages,
		st.queue.deferred, age(st.queue.oldest_age)) ]);
	if (st.disk)
		r.push([ _('Free space'), '%1024mB / %1024mB (%s)'.format(st.disk.free, st.disk.total, st.disk.path) ]);
	if (c)
		r.push([ _('Certificate'), c.error || E('span', {}, [ c.subject, ', ', _('valid until'), ' ', when(c.not_after),
			c.expired ? E('strong', { 'style': 'color:#c00' }, ' ' + _('EXPIRED')) : '', E('br'), 'SHA-256 ', c.sha256 ]) ]);
	r.push([ _('Configuration'), E('span', { 'style': 'color:' + (ck.ok ? 'green' : '#c00') }, ck.output) ]);
	return r;
}

return view.extend({
	load: function() {
		return Promise.all([ callStatus(), callCheck() ]);
	},

	update: function(data) {
		var st = data[0], ck = data[1], table = document.getElementById('kotak-status'),
		    errs = document.getElementById('kotak-errors');

		if (st.error)
			return ui.addNotification(null, E('p', st.error), 'danger');
		table.innerHTML = '';
		rows(st, ck).forEach(function(r) {
			table.appendChild(E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td left', 'width': '25%' }, r[0]),
				E('td', { 'class': 'td left' }, r[1])
			]));
		});
		errs.innerHTML = '';
		(st.errors || []).forEach(function(e) {
			errs.appendChild(E('li', {}, when(e.time) + '  ' + e.text));
		});
		if (!(st.errors || []).length)
			errs.appendChild(E('li', {}, _('none')));
	},

	render: function(data) {
		var self = this, to = E('input', { 'class': 'cbi-input-text', 'type': 'email', 'placeholder': 'user@example.lan' });
		var v = E('div', { 'class': 'cbi-map' }, [
			E('h2', _('Mail server')),
			E('table', { 'class': 'table', 'id': 'kotak-status' }),
			E('h3', _('Recent warnings')),
			E('ul', { 'id': 'kotak-errors', 'style': 'font-family:monospace' }),
			E('h3', _('Send a test message')),
			E('div', {}, [ to, ' ', E('button', {
				'class': 'cbi-button cbi-button-action',
				'click': ui.createHandlerFn(this, function() {
					return callTestMail(to.value.trim()).then(function(r) {
						if (r.error)
							throw new Error(r.error);
						ui.addNotification(null, E('p', _('Test message queued as %s.').format(r.id)), 'info');
					}).catch(function(e) { ui.addNotification(null, E('p', e.message), 'danger'); });
				})
			}, _('Send test mail')) ])
		]);

		window.setTimeout(function() { self.update(data); }, 0);
		poll.add(function() {
			return Promise.all([ callStatus(), callCheck() ]).then(L.bind(self.update, self));
		}, 5);
		return v;
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
