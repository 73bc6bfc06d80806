# Stand-in for Buildroot's generic-package (tests/board/test_buildroot.sh):
# runs the package's CONFIGURE, BUILD, INSTALL_TARGET and INSTALL_INIT_SYSV
# commands in that order in $(@D), as Buildroot does for a local package
# after rsyncing its SITE there.  The test sets BR2_* and the toolchain.
define sep


endef
# (the target is a stamp in the build directory, so that $(@D), an
# automatic variable, names that directory as in Buildroot)
define generic-package
.PHONY: all
all: $$(KOTAK_BUILDDIR)/.stamp_all
$$(KOTAK_BUILDDIR)/.stamp_all:
	$$(KOTAK_CONFIGURE_CMDS)
	$$(KOTAK_BUILD_CMDS)
	$$(KOTAK_INSTALL_TARGET_CMDS)
	$$(KOTAK_INSTALL_INIT_SYSV)
	touch $$@
endef
