# Stand-in for the luci feed's luci.mk (tests/board/test_openwrt.sh): a
# LuCI app's htdocs/ under /www and root/ under /, as luci.mk installs them.
PKG_NAME ?= $(notdir $(CURDIR))
PKG_VERSION ?= git
PKG_RELEASE ?= 1
include $(INCLUDE_DIR)/package.mk

define Package/$(PKG_NAME)
  SECTION:=luci
  TITLE:=$(LUCI_TITLE)
  DEPENDS:=$(LUCI_DEPENDS)
endef

define Build/Prepare
endef

define Build/Compile
endef

define Package/$(PKG_NAME)/install
	$(INSTALL_DIR) $(1)/www
	cp -pR $(CURDIR)/htdocs/* $(1)/www/
	cp -pR $(CURDIR)/root/* $(1)/
endef

$(eval $(call BuildPackage,$(PKG_NAME)))
