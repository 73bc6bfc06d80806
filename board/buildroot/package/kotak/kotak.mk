################################################################################
#
# kotak
#
################################################################################

# Built from the kotak tree that holds this BR2_EXTERNAL (board/buildroot/../..).
KOTAK_VERSION = custom
KOTAK_SITE = $(BR2_EXTERNAL_KOTAK_PATH)/../..
KOTAK_SITE_METHOD = local
KOTAK_LICENSE = MIT
# A developer's host build (build*/, .config, the kotak binary) must not be
# rsynced in: the cross build would reuse host objects and Kconfig choices.
# (/output: a Buildroot O= inside the kotak tree would copy itself.)
KOTAK_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /build --exclude '/build-*' --exclude /.config --exclude /.config.old \
	--exclude /kotak --exclude /demo --exclude /output

# kotak's own Kconfig from configs/defconfig and the options here (a later
# line wins); scripts/genconfig.sh reads it with awk: no kconfiglib.
KOTAK_KCONFIG_OPTS = TLS RELAY POP3 IMAP RPC
define KOTAK_CONFIGURE_CMDS
	cp $(@D)/configs/defconfig $(@D)/.config
	$(foreach o,$(KOTAK_KCONFIG_OPTS),\
		echo '$(if $(BR2_PACKAGE_KOTAK_$(o)),CONFIG_$(o)=y,# CONFIG_$(o) is not set)' >> $(@D)/.config$(sep))
endef

# TARGET_CONFIGURE_OPTS passes Buildroot's CFLAGS (-O2 by default); kotak's
# Makefile builds its own objects -Os after them (KOTAK_OPT=-O2 here would
# override that on purpose).  BearSSL is Buildroot's package; kotak links
# statically when the libraries are static, else dynamically.
KOTAK_MAKE_OPTS = \
	$(TARGET_CONFIGURE_OPTS) \
	CROSS_COMPILE="$(TARGET_CROSS)"

ifeq ($(BR2_PACKAGE_KOTAK_TLS),y)
KOTAK_DEPENDENCIES += bearssl
KOTAK_MAKE_OPTS += BEARSSL_INC=$(STAGING_DIR)/usr/include
ifeq ($(BR2_SHARED_LIBS),y)
KOTAK_MAKE_OPTS += BEARSSL_LIB=-lbearssl
else
KOTAK_MAKE_OPTS += BEARSSL_LIB=$(STAGING_DIR)/usr/lib/libbearssl.a
endif
endif

ifeq ($(BR2_SHARED_LIBS),y)
KOTAK_MAKE_OPTS += KOTAK_STATIC=
endif

ifeq ($(BR2_PACKAGE_KOTAK_MIPS16),y)
KOTAK_MAKE_OPTS += MIPS16=1
endif

define KOTAK_BUILD_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) $(KOTAK_MAKE_OPTS) -C $(@D) kotak
endef

# kotak drops to this user after binding its ports (option user 'kotak').
define KOTAK_USERS
	kotak -1 kotak -1 * - - - kotak mail server
endef

ifeq ($(BR2_PACKAGE_KOTAK_WWW),y)
define KOTAK_INSTALL_WWW
	$(INSTALL) -D -m 0644 -t $(TARGET_DIR)/var/www/kotak \
		$(@D)/board/www/index.html $(@D)/board/www/kotak.css $(@D)/board/www/kotak.js
	$(INSTALL) -D -m 0755 $(@D)/board/www/cgi-bin/kotak \
		$(TARGET_DIR)/var/www/kotak/cgi-bin/kotak
endef
endif

# /etc/config/kotak is shared with the OpenWrt package (installed disabled,
# logging to syslog); the rpcd plugin is OpenWrt's only.
define KOTAK_INSTALL_TARGET_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) $(KOTAK_MAKE_OPTS) -C $(@D) \
		DESTDIR=$(TARGET_DIR) PREFIX=/usr install
	$(INSTALL) -D -m 0644 $(@D)/board/openwrt/kotak/files/kotak.config \
		$(TARGET_DIR)/etc/config/kotak
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/etc/kotak
	$(KOTAK_INSTALL_WWW)
endef

define KOTAK_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(KOTAK_PKGDIR)/S50kotak \
		$(TARGET_DIR)/etc/init.d/S50kotak
endef

$(eval $(generic-package))
