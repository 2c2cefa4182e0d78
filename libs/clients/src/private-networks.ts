import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * The addresses of the shop's own networks and hosts, which no receiver outside them has:
 * loopback, the private ranges, link-local (a cloud's metadata service), carrier-grade NAT,
 * "this network", multicast, and IPv6's unique-local range (an IPv4-mapped address is checked as its IPv4 one).
 */
const INSIDE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  INSIDE.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  INSIDE.addSubnet(network, prefix, 'ipv6');
}

/** The first address a URL's host names (an IP literal, or what it resolves to) inside the shop's networks; null when none is. Throws when it resolves to nothing. */
export async function addressInside(host: string): Promise<string | null> {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  const addresses = isIP(bare) ? [{ address: bare, family: isIP(bare) }] : await lookup(bare, { all: true, verbatim: true });
  return addresses.find(({ address, family }) => INSIDE.check(address, family === 6 ? 'ipv6' : 'ipv4'))?.address ?? null;
}
