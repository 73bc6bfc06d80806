/* net.c: IPv4/IPv6 CIDR lists (cleartext_auth_net, later relay_net). */
#include "kotak.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "192.168.1.0/24", "fd00::/8", or a plain address; 0 ok, -1 bad. */
int
net_parse(const char *s, struct net *n)
{
	char a[IP_MAX];
	const char *sl = strchr(s, '/');
	unsigned long long bits;
	size_t l = sl ? (size_t)(sl - s) : strlen(s);

	if (l >= sizeof(a))
		return -1;
	memcpy(a, s, l);
	a[l] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, a, n->addr + 12) == 1) {
		n->addr[10] = n->addr[11] = 0xff;	/* v4-mapped: one compare for both */
		n->bits = 96 + 32;
		if (sl && (parse_uint(sl + 1, 32, &bits) < 0))
			return -1;
		if (sl)
			n->bits = 96 + (int)bits;
	} else if (inet_pton(AF_INET6, a, n->addr) == 1) {
		n->bits = 128;
		if (sl && (parse_uint(sl + 1, 128, &bits) < 0))
			return -1;
		if (sl)
			n->bits = (int)bits;
	} else {
		return -1;
	}
	return 0;
}

int
net_match(const struct net *n, int count, const char *ip)
{
	struct net a;
	int i, b;

	if (net_parse(ip, &a) < 0)
		return 0;
	for (i = 0; i < count; i++) {
		for (b = 0; b < n[i].bits; b++)
			if ((a.addr[b / 8] ^ n[i].addr[b / 8]) & (0x80 >> (b % 8)))
				break;
		if (b == n[i].bits)
			return 1;
	}
	return 0;
}

/* see kotak.h: a host usually owns a whole IPv6 /64, so limits per
 * address count the /64 once (a v4-mapped address stays whole). */
void
net_group(const char *ip, unsigned char g[16])
{
	static const unsigned char v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct net n;

	if (net_parse(ip, &n) < 0)
		memset(n.addr, 0, 16);
	if (memcmp(n.addr, v4, 12))
		memset(n.addr + 8, 0, 8);
	memcpy(g, n.addr, 16);
}
