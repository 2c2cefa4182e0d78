import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * The addresses of the shop's own networks and hosts, which no receiver outside them has:
 * loopback, the private ranges, link-local (a cloud's metadata service), carrier-grade NAT,
 * "this network", multicast, and IPv6's unique-local range (an IPv4-mapped address is checked as its IPv4 one,
 * and so is one a translation gateway reaches an IPv4 address by: carriedIPv4).
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
  // a local-use IPv6/IPv4 translation prefix (RFC 8215): a gateway of the shop's own
  ['64:ff9b:1::', 48],
] as const) {
  INSIDE.addSubnet(network, prefix, 'ipv6');
}

/**
 * IPv6 prefixes that carry an IPv4 address, which a gateway reaches for them: NAT64's well-known
 * prefix (RFC 6052: an IPv6-only cloud subnet's 64:ff9b::10.0.0.5 is 10.0.0.5) and 6to4 (2002::/16).
 * Such an address is inside when the IPv4 one it carries is.
 */
const NAT64 = new BlockList();
NAT64.addSubnet('64:ff9b::', 96, 'ipv6');
const SIX_TO_FOUR = new BlockList();
SIX_TO_FOUR.addSubnet('2002::', 16, 'ipv6');

/** The IPv4 address an IPv6 one carries for a translation gateway (NAT64, 6to4); null for any other. */
function carriedIPv4(address: string): string | null {
  const at = NAT64.check(address, 'ipv6') ? 6 : SIX_TO_FOUR.check(address, 'ipv6') ? 1 : null;
  if (at === null) return null;
  const groups = ipv6Groups(address);
  return [groups[at]! >> 8, groups[at]! & 0xff, groups[at + 1]! >> 8, groups[at + 1]! & 0xff].join('.');
}

/** An IPv6 address's eight 16-bit groups (its "::" expanded, a dotted IPv4 tail as its two groups). */
function ipv6Groups(address: string): number[] {
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const text = quad ? `${address.slice(0, quad.index)}${((Number(quad[1]) << 8) | Number(quad[2])).toString(16)}:${((Number(quad[3]) << 8) | Number(quad[4])).toString(16)}` : address;
  const [head, tail] = text.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const before = groups(head);
  const after = groups(tail);
  return [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
}

function inside(address: string, family: number): boolean {
  if (INSIDE.check(address, family === 6 ? 'ipv6' : 'ipv4')) return true;
  const carried = family === 6 ? carriedIPv4(address) : null;
  return carried !== null && INSIDE.check(carried, 'ipv4');
}

/** A URL's host without the brackets of an IPv6 literal. */
const bareHost = (host: string): string => (host.startsWith('[') ? host.slice(1, -1) : host);

/** The first address a URL's host names (an IP literal, or what it resolves to) inside the shop's networks; null when none is. Throws when it resolves to nothing. */
export async function addressInside(host: string): Promise<string | null> {
  const bare = bareHost(host);
  const addresses = isIP(bare) ? [{ address: bare, family: isIP(bare) }] : await lookup(bare, { all: true, verbatim: true });
  return addresses.find(({ address, family }) => inside(address, family))?.address ?? null;
}

/** A URL's host when it is an IP literal inside the shop's networks; null for one outside, or for a name (which lookupOutside checks as it connects). */
export function literalInside(host: string): string | null {
  const bare = bareHost(host);
  return isIP(bare) !== 0 && inside(bare, isIP(bare)) ? bare : null;
}

/** A connection refused by lookupOutside: its host resolved to an address of the shop's own networks. */
export class AddressInside extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`${host} resolves to ${address}, an address of the shop's own networks`);
    this.name = 'AddressInside';
  }
}

/**
 * A connection's own lookup (net/tls `lookup`) that resolves its host once and fails with AddressInside
 * when any address is inside the shop's networks: the socket then goes to the addresses checked, so a
 * name that answers an inside address when asked again (DNS rebinding) is never connected to there.
 * Node connects to an IP literal without a lookup: literalInside checks those.
 */
export const lookupOutside: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { family: options.family, hints: options.hints, all: true, verbatim: true }).then(
    (addresses) => {
      const insideOne = addresses.find(({ address, family }) => inside(address, family));
      if (insideOne) callback(new AddressInside(hostname, insideOne.address), '');
      else if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    },
    (error: NodeJS.ErrnoException) => callback(error, ''),
  );
};
