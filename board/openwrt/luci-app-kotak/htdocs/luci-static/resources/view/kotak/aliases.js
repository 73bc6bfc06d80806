'use strict';
'require view';
'require form';

// config alias sections of /etc/config/kotak: a local name delivered to
// users, addresses of the local domains, or forwarded to other addresses.
return view.extend({
	render: function() {
		var m, s, o;

		m = new form.Map('kotak', _('Mail aliases'),
			_('An alias delivers mail for name@each-local-domain to local users, or forwards it to addresses elsewhere. Keep one named postmaster.'));

		s = m.section(form.GridSection, 'alias');
		s.anonymous = true;
		s.addremove = true;

		o = s.option(form.Value, 'name', _('Name'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			return /^[^\s@'\x00-\x1f\x7f]+$/.test(value || '') || _('A local name, without @');
		};

		o = s.option(form.DynamicList, 'to', _('Delivered to'), _('Users, user@localdomain, or addresses elsewhere'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			return !value || /^[^\s<>,;"\\()[\]'\x00-\x1f\x7f]+$/.test(value) || _('A user name or an address');
		};

		return m.render();
	}
});
