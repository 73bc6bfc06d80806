include $(sort $(wildcard $(BR2_EXTERNAL_KOTAK_PATH)/package/*/*.mk))
