################################################################################
#
# kotak
#
################################################################################

# Built from the kotak tree that holds this BR2_EXTERNAL (board/buildroot/../..).
KOTAK_VERSION = custom
KOTAK_SITE = $(BR2_EXTERNAL_KOTAK_PATH)/../..
KOTAK_SITE_METHOD = local
# A developer's host build (build/, .config, the kotak binary) must not be
# rsynced in: the cross build would reuse host objects and Kconfig choices.
# (/output: a Buildroot O= inside the kotak tree would copy itself.)
KOTAK_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /build --exclude /build-asan --exclude /.config --exclude /.config.old \
	--exclude /kotak --exclude /demo --exclude /output

KOTAK_MAKE_OPTS = \
	$(TARGET_CONFIGURE_OPTS) \
	CROSS_COMPILE="$(TARGET_CROSS)"

define KOTAK_BUILD_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) $(KOTAK_MAKE_OPTS) -C $(@D)
endef

# kotak drops to this user after binding its ports (option user 'kotak').
define KOTAK_USERS
	kotak -1 kotak -1 * - - - kotak mail server
endef

# /etc/config/kotak is shared with the OpenWrt package; Buildroot's init
# starts kotak in the background (no stderr), so it logs to syslog here.
define KOTAK_INSTALL_TARGET_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) $(KOTAK_MAKE_OPTS) -C $(@D) \
		DESTDIR=$(TARGET_DIR) PREFIX=/usr install
	$(INSTALL) -D -m 0644 $(@D)/board/openwrt/kotak/files/kotak.config \
		$(TARGET_DIR)/etc/config/kotak
	$(SED) "s/^\(\toption user .*\)$$/\1\n\toption log 'syslog'/" \
		$(TARGET_DIR)/etc/config/kotak
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/etc/kotak
endef

define KOTAK_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(KOTAK_PKGDIR)/S50kotak \
		$(TARGET_DIR)/etc/init.d/S50kotak
endef

$(eval $(generic-package))
