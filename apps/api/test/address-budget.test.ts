import { describe, expect, it } from 'vitest';
import { addressBudget } from '../src/plugins/rate-limit.js';

describe('the budget an anonymous request spends, by its address', () => {
  it("is an IPv4 address's own, an IPv4-mapped IPv6 address's IPv4 one, and an IPv6 address's /64 network's however it is written", () => {
    expect(addressBudget('198.51.100.7')).toBe('ip:198.51.100.7');
    expect(addressBudget('::ffff:198.51.100.7')).toBe('ip:198.51.100.7');
    const network = 'ip6:2001:db8:7:1::/64';
    for (const ip of ['2001:db8:7:1::1', '2001:0DB8:0007:0001:ffff:1:2:3', '2001:db8:7:1::', '2001:db8:7:1:0:0:0:9']) expect(addressBudget(ip)).toBe(network);
    expect(addressBudget('2001:db8:7::1')).toBe('ip6:2001:db8:7:0::/64');
    expect(addressBudget('::1')).toBe('ip6:0:0:0:0::/64');
    expect(addressBudget('2001:db8:7:2::1')).not.toBe(network);
  });
});
