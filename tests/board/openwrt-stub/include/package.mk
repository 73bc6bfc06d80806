# Stand-in for OpenWrt's include/package.mk (tests/board/test_openwrt.sh).
# It runs the package's own Build/Prepare, Build/Compile and
# Package/NAME/install as OpenWrt does, then assembles the .ipk as
# ipkg-build does (ELF files stripped as RSTRIP does): control fields from Package/NAME (DEPENDS, USERID,
# ALTERNATIVES, conffiles, postinst), data and control tarballs owned by
# root.  No download step: the test puts the declared source in DL_DIR.
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
INSTALL_DIR := install -d -m0755
INSTALL_BIN := install -m0755
INSTALL_DATA := install -m0644
INSTALL_CONF := install -m0600
LN := ln -sf
IPKG_DIR = $(BUILD_DIR)/ipkg/$(1)

# Package/NAME's fields become make variables, as in OpenWrt
define BuildPackage
$(eval $(Package/$(1)))
$(eval PKG_DEPENDS_$(1) := $(strip $(subst +,,$(DEPENDS))))
$(eval PKG_USERID_$(1) := $(USERID))
$(eval PKG_ALT_$(1) := $(ALTERNATIVES))
$(eval PKG_SECTION_$(1) := $(SECTION))
$(file >$(BUILD_DIR)/.$(1).conffiles,$(Package/$(1)/conffiles))
$(file >$(BUILD_DIR)/.$(1).postinst,$(Package/$(1)/postinst))

.PHONY: ipk-$(1)
ipk-$(1):
	$(Build/Prepare)
	$(Build/Compile)
	rm -rf $(call IPKG_DIR,$(1)) && mkdir -p $(call IPKG_DIR,$(1))/data $(call IPKG_DIR,$(1))/control
	$(call Package/$(1)/install,$(call IPKG_DIR,$(1))/data)
	# as OpenWrt's RSTRIP: every ELF file stripped
	find $(call IPKG_DIR,$(1))/data -type f -exec sh -c 'head -c 4 "$$$$1" | grep -q ELF && $(TARGET_CROSS)strip "$$$$1"' sh {} \;
	printf '%s\n' 'Package: $(1)' 'Version: $(PKG_VERSION)-$(PKG_RELEASE)' \
		'Depends: $(subst $(space),$(comma) ,$(strip libc $(PKG_DEPENDS_$(1))))' \
		'Source: package/$(PKG_NAME)' 'License: $(PKG_LICENSE)' 'Section: $(PKG_SECTION_$(1))' \
		$(if $(PKG_USERID_$(1)),'Require-User: $(PKG_USERID_$(1))') \
		$(if $(PKG_ALT_$(1)),'Alternatives: $(PKG_ALT_$(1))') \
		'Architecture: $(ARCH_PACKAGES)' \
		"Installed-Size: $$$$(du -sb $(call IPKG_DIR,$(1))/data | cut -f1)" \
		'Description: $(TITLE)' > $(call IPKG_DIR,$(1))/control/control
	$(if $(Package/$(1)/conffiles),cp $(BUILD_DIR)/.$(1).conffiles $(call IPKG_DIR,$(1))/control/conffiles)
	$(if $(Package/$(1)/postinst),cp $(BUILD_DIR)/.$(1).postinst $(call IPKG_DIR,$(1))/control/postinst-pkg)
	cd $(call IPKG_DIR,$(1)) && echo 2.0 > debian-binary && \
		tar --owner=0 --group=0 --numeric-owner -czf data.tar.gz -C data . && \
		tar --owner=0 --group=0 --numeric-owner -czf control.tar.gz -C control . && \
		tar --owner=0 --group=0 --numeric-owner -czf $(BIN_DIR)/$(1)_$(PKG_VERSION)-$(PKG_RELEASE)_$(ARCH_PACKAGES).ipk \
			./debian-binary ./data.tar.gz ./control.tar.gz
endef

empty :=
space := $(empty) $(empty)
comma := ,