'use strict';
'require view';
'require rpc';
'require ui';

// The users file through `kotak rpc`: passwords go to kotak in the JSON
// of the call, are hashed there, and a running kotak rereads the file.
var callList = rpc.declare({ object: 'kotak', method: 'user_list' });
var callAdd = rpc.declare({ object: 'kotak', method: 'user_add', params: [ 'name', 'password' ] });
var callPasswd = rpc.declare({ object: 'kotak', method: 'user_passwd', params: [ 'name', 'password' ] });
var callDel = rpc.declare({ object: 'kotak', method: 'user_del', params: [ 'name' ] });

function checked(r) {
	if (r.error)
		throw new Error(r.error);
	return r;
}

function failed(e) {
	ui.addNotification(null, E('p', e.message), 'danger');
}

return view.extend({
	load: function() {
		return callList();
	},

	render: function(list) {
		var self = this, name = E('input', { 'class': 'cbi-input-text', 'placeholder': _('name'), 'maxlength': 63 }),
		    pw = E('input', { 'class': 'cbi-input-password', 'type': 'password', 'autocomplete': 'new-password', 'placeholder': _('password') });
		var table = E('table', { 'class': 'table' }, [
			E('tr', { 'class': 'tr table-titles' }, [
				E('th', { 'class': 'th' }, _('Name')),
				E('th', { 'class': 'th' }, _('New password')),
				E('th', { 'class': 'th cbi-section-actions' }, '')
			])
		]);

		(list.users || []).forEach(function(u) {
			var npw = E('input', { 'class': 'cbi-input-password', 'type': 'password', 'autocomplete': 'new-password' });
			table.appendChild(E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, u),
				E('td', { 'class': 'td' }, [ npw, ' ', E('button', {
					'class': 'cbi-button cbi-button-apply',
					'click': ui.createHandlerFn(self, function() {
						return callPasswd(u, npw.value).then(checked).then(function() {
							npw.value = '';
							ui.addNotification(null, E('p', _('Password of %s changed.').format(u)), 'info');
						}).catch(failed);
					})
				}, _('Set')) ]),
				E('td', { 'class': 'td cbi-section-actions' }, E('button', {
					'class': 'cbi-button cbi-button-remove',
					'click': ui.createHandlerFn(self, function() {
						if (!confirm(_('Delete user %s? The mailbox stays on disk.').format(u)))
							return;
						return callDel(u).then(checked).then(function() { location.reload(); }).catch(failed);
					})
				}, _('Delete')))
			]));
		});

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', _('Mail users')),
			E('div', { 'class': 'cbi-map-descr' }, _('Users log in over POP3 and SMTP submission; their mail is kept in data_dir/mail/NAME/INBOX.')),
			table,
			E('h3', _('Add a user')),
			E('div', {}, [ name, ' ', pw, ' ', E('button', {
				'class': 'cbi-button cbi-button-add',
				'click': ui.createHandlerFn(this, function() {
					if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$/.test(name.value))
						return failed(new Error(_('A user name is letters, digits, . _ and -')));
					return callAdd(name.value, pw.value).then(checked).then(function() { location.reload(); }).catch(failed);
				})
			}, _('Add')) ])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
