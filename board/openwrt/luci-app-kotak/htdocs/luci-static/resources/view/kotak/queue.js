'use strict';
'require view';
'require rpc';
'require ui';

// The outgoing queue: messages waiting for delivery, retried with backoff.
var callList = rpc.declare({ object: 'kotak', method: 'queue_list' });
var callFlush = rpc.declare({ object: 'kotak', method: 'queue_flush' });
var callDel = rpc.declare({ object: 'kotak', method: 'queue_del', params: [ 'id' ] });

function when(t) {
	return new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function failed(e) {
	ui.addNotification(null, E('p', e.message), 'danger');
}

function checked(r) {
	if (r.error)
		throw new Error(r.error);
	return r;
}

return view.extend({
	load: function() {
		return callList();
	},

	render: function(q) {
		var self = this, now = Date.now() / 1000;
		var table = E('table', { 'class': 'table' }, [
			E('tr', { 'class': 'tr table-titles' }, [ _('Id'), _('Arrived'), _('Size'), _('Sender'), _('Recipients'), _('Next try'), '' ].map(function(t) {
				return E('th', { 'class': 'th' }, t);
			}))
		]);

		if (q.error)
			failed(new Error(q.error));
		(q.queue || []).forEach(function(m) {
			table.appendChild(E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, m.id),
				E('td', { 'class': 'td' }, when(m.arrival)),
				E('td', { 'class': 'td' }, '%1024mB'.format(m.size)),
				E('td', { 'class': 'td' }, m.sender || '<>'),
				E('td', { 'class': 'td' }, m.recipients.map(function(r) { return r.address; }).join(', ')),
				E('td', { 'class': 'td' }, m.next_attempt > now ? when(m.next_attempt) : _('now')),
				E('td', { 'class': 'td cbi-section-actions' }, E('button', {
					'class': 'cbi-button cbi-button-remove',
					'click': ui.createHandlerFn(self, function() {
						if (!confirm(_('Delete message %s from the queue? It is neither delivered nor bounced.').format(m.id)))
							return;
						return callDel(m.id).then(checked).then(function() { location.reload(); }).catch(failed);
					})
				}, _('Delete')))
			]));
		});
		if (!(q.queue || []).length)
			table.appendChild(E('tr', { 'class': 'tr placeholder' }, E('td', { 'class': 'td' }, _('The queue is empty.'))));

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', _('Mail queue')),
			E('div', { 'class': 'cbi-map-descr' }, _('Messages kotak could not deliver yet; it retries them with growing pauses and bounces them after the queue lifetime.')),
			E('p', {}, E('button', {
				'class': 'cbi-button cbi-button-action',
				'click': ui.createHandlerFn(this, function() {
					return callFlush().then(checked).then(function() {
						ui.addNotification(null, E('p', _('kotak retries every queued message now.')), 'info');
					}).catch(failed);
				})
			}, _('Retry all now'))),
			table
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
