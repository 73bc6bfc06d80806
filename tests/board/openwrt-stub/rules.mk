# Stand-in for OpenWrt's rules.mk (tests/board/test_openwrt.sh): the few
# variables the kotak packages read.  TARGET_* come from the test.
BUILD_DIR ?= $(TOPDIR)/build_dir
DL_DIR ?= $(TOPDIR)/dl
INCLUDE_DIR ?= $(TOPDIR)/include
TAR ?= tar
