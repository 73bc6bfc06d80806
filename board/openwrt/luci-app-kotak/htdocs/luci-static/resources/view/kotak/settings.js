'use strict';
'require view';
'require form';
'require rpc';
'require ui';

// /etc/config/kotak through uci: Save & Apply makes procd run
// `/etc/init.d/kotak reload`, which checks the file with `kotak -t` and
// then sends SIGHUP.  Every value is checked here as kotak's own config
// reader would: kotak cannot read a ' or a control character (uci would
// write it), so those are refused.
var callShPassword = rpc.declare({ object: 'kotak', method: 'smarthost_password', params: [ 'password' ] });

function storable(section_id, value) {
	return /[\x00-\x1f\x7f']/.test(value || '') ? _('Control characters and \' cannot be stored') : true;
}

function absPath(section_id, value) {
	if (!value)
		return true;
	return (/^\//.test(value) && storable(section_id, value) === true) || _('An absolute path');
}

function hostPort(section_id, value) {
	if (!value)
		return true;
	return /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(value) || _('host, host:port or [IPv6]:port');
}

return view.extend({
	render: function() {
		var m, s, o;

		m = new form.Map('kotak', _('Mail server'),
			_('kotak receives the mail of your domains over SMTP, keeps it in mbox files and serves it over POP3; mail for other domains goes out to their MX or through a smarthost.'));

		s = m.section(form.TypedSection, 'kotak', _('Settings'));
		s.anonymous = true;
		s.addremove = false;
		s.tab('general', _('General'));
		s.tab('clients', _('Clients'));
		s.tab('relay', _('Outgoing mail'));
		s.tab('tls', _('TLS'));
		s.tab('limits', _('Limits'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'), _('Start kotak at boot. It comes installed disabled until configured.'));
		o.rmempty = false;
		o.default = '0';

		o = s.taboption('general', form.Value, 'hostname', _('Host name'), _('Named in the SMTP greeting and in Received: headers.'));
		o.datatype = 'hostname';
		o.rmempty = false;

		o = s.taboption('general', form.DynamicList, 'domain', _('Local domains'), _('Mail to user@domain is delivered here.'));
		o.datatype = 'hostname';

		o = s.taboption('general', form.Value, 'data_dir', _('Data directory'),
			_('Queue and mailboxes. Keep it on persistent storage (the overlay or a USB disk).') +
			' <strong id="kotak-ramwarn" style="color:#c00;display:none">' +
			_('Warning: /tmp and /var are RAM on OpenWrt; mail kept there is lost at reboot.') + '</strong>');
		o.placeholder = '/srv/kotak';
		o.validate = function(section_id, value) {
			var w = document.getElementById('kotak-ramwarn');
			if (w)
				w.style.display = /^\/(tmp|var|run|dev)(\/|$)/.test(value || '') ? '' : 'none';
			return absPath(section_id, value);
		};

		o = s.taboption('general', form.ListValue, 'log', _('Log to'));
		o.value('syslog', _('syslog (logread)'));
		o.value('stderr', _('standard error'));
		o.default = 'syslog';

		o = s.taboption('clients', form.DynamicList, 'relay_net', _('Relay networks'),
			_('Clients that may send mail to other domains without logging in, e.g. 192.168.1.0/24.'));
		o.datatype = 'or(ipaddr,cidr)';

		o = s.taboption('clients', form.DynamicList, 'cleartext_auth_net', _('Cleartext login networks'),
			_('Clients that may log in without TLS.'));
		o.datatype = 'or(ipaddr,cidr)';

		o = s.taboption('clients', form.Flag, 'auth_any_sender', _('Any sender address'),
			_('Logged-in users may send as any address, not only their own.'));

		o = s.taboption('relay', form.Value, 'smarthost', _('Smarthost'),
			_('Send all outgoing mail through this host (e.g. your provider\'s smtp.example.net:587); empty: to each domain\'s MX.'));
		o.validate = hostPort;

		o = s.taboption('relay', form.ListValue, 'smarthost_tls', _('Smarthost TLS'));
		o.value('auto', _('auto (implicit on port 465, else STARTTLS)'));
		o.value('implicit', _('implicit'));
		o.value('starttls', _('STARTTLS'));
		o.default = 'auto';
		o.depends({ smarthost: /./ });

		o = s.taboption('relay', form.Value, 'smarthost_user', _('Smarthost login'));
		o.validate = storable;
		o.depends({ smarthost: /./ });

		o = s.taboption('relay', form.Value, 'smarthost_password_file', _('Smarthost password file'),
			_('A file whose first line is the password, mode 0600.'));
		o.placeholder = '/etc/kotak/smarthost.pw';
		o.validate = absPath;
		o.depends({ smarthost: /./ });

		// not an option of the file: written by kotak into smarthost_password_file
		o = s.taboption('relay', form.Value, '_smarthost_password', _('Smarthost password'),
			_('Written into the password file named above (save that first).'));
		o.password = true;
		o.rmempty = true;
		o.depends({ smarthost: /./ });
		o.cfgvalue = function() { return ''; };
		o.remove = function() {};
		o.write = function(section_id, value) {
			return callShPassword(value).then(function(r) {
				if (r.error)
					ui.addNotification(null, E('p', r.error), 'danger');
			});
		};

		o = s.taboption('relay', form.Flag, 'smarthost_verify', _('Verify the smarthost'),
			_('Its certificate must chain to the CA file and name the host.'));
		o.default = '1';
		o.rmempty = false;
		o.depends({ smarthost: /./ });

		o = s.taboption('relay', form.Value, 'ca_file', _('CA file'));
		o.placeholder = '/etc/ssl/certs/ca-certificates.crt';
		o.validate = absPath;
		o.depends({ smarthost: /./ });

		o = s.taboption('relay', form.Value, 'dns_server', _('DNS server'), _('Empty: those of /etc/resolv.conf.'));
		o.datatype = 'or(ipaddr,ipaddrport(1))';

		o = s.taboption('tls', form.Value, 'cert', _('Certificate'), _('PEM file; empty: a self-signed certificate made in the data directory.'));
		o.validate = absPath;

		o = s.taboption('tls', form.Value, 'key', _('Key'), _('PEM file; empty: in the certificate file.'));
		o.validate = absPath;

		o = s.taboption('limits', form.Value, 'max_message_size', _('Largest message (bytes)'));
		o.datatype = 'range(1024,1099511627776)';
		o.placeholder = '26214400';

		o = s.taboption('limits', form.Value, 'max_recipients', _('Recipients per message'));
		o.datatype = 'range(1,1000)';
		o.placeholder = '100';

		o = s.taboption('limits', form.Value, 'max_sessions', _('Sessions'));
		o.datatype = 'range(1,128)';
		o.placeholder = '100';

		o = s.taboption('limits', form.Value, 'max_sessions_per_ip', _('Sessions per client address'));
		o.datatype = 'range(1,128)';
		o.placeholder = '20';

		o = s.taboption('limits', form.Value, 'timeout', _('Command timeout (s)'));
		o.datatype = 'range(1,86400)';
		o.placeholder = '300';

		s = m.section(form.GridSection, 'listen', _('Listeners'), _('Sockets kotak listens on. The firewall still decides who reaches them.'));
		s.anonymous = true;
		s.addremove = true;

		o = s.option(form.ListValue, 'proto', _('Protocol'));
		[ 'smtp', 'submission', 'smtps', 'pop3', 'pop3s' ].forEach(function(p) { o.value(p); });
		o.rmempty = false;

		o = s.option(form.Value, 'address', _('Address'));
		o.datatype = 'ipaddr';
		o.placeholder = '0.0.0.0';

		o = s.option(form.Value, 'port', _('Port'), _('Empty: the protocol\'s own'));
		o.datatype = 'port';

		return m.render();
	}
});
