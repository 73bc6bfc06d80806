# Stand-in for Buildroot's generic-package (tests/board/test_buildroot.sh):
# runs the package's CONFIGURE, BUILD, INSTALL_TARGET and INSTALL_INIT_SYSV
# commands in that order in $(@D), as Buildroot does for a local package
# after rsyncing its SITE there.  The test sets BR2_* and the toolchain.
sep := $(empty)
define sep


endef
pkgname = $(call UPPERCASE,$(notdir $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))))
define generic-package
.PHONY: all
all:
	$$(KOTAK_CONFIGURE_CMDS)
	$$(KOTAK_BUILD_CMDS)
	$$(KOTAK_INSTALL_TARGET_CMDS)
	$$(KOTAK_INSTALL_INIT_SYSV)
endef
