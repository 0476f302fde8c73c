import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { GpError } from '../../model/index.js';

/** One address a host name resolves to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to all its addresses (the default uses the system resolver, like `fetch` would). */
export type HostResolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export interface TargetPolicyOptions {
  /** When not empty, only these host names (exact, or `*.example.com` for any subdomain) may be called. */
  readonly allowedHosts?: readonly string[];
  /**
   * Address ranges that may be called even though they are internal (loopback, private, link-local, …),
   * e.g. `["10.20.0.0/16"]`, or `["127.0.0.1/32"]` for a receiver on this machine. A cloud metadata
   * address is allowed only when listed as a single address (`/32`, `/128`).
   */
  readonly allowedCidrs?: readonly string[];
  readonly resolve?: HostResolver;
}

/** Where to connect: an address that was checked, for the URL's host. */
export type TargetCheck =
  | { readonly ok: true; readonly hostname: string; readonly address: string; readonly family: 4 | 6 }
  | { readonly ok: false; readonly reason: string; /** true when trying later may help (the name did not resolve) */ readonly transient: boolean };

/**
 * Decides which webhook targets may be called, so that an alert cannot be pointed at internal
 * services (server-side request forgery). By default every public address is allowed and
 * loopback, private, link-local, carrier-grade NAT, unique-local, multicast, reserved and
 * documentation ranges and the cloud metadata addresses (169.254.169.254, fd00:ec2::254, …) are
 * refused; IPv4 addresses inside IPv6 (mapped, NAT64, 6to4) are judged as IPv4.
 *
 * A host name is resolved and every address it resolves to must be allowed; the caller then
 * connects to the checked address (never resolving again), so a DNS answer that changes between
 * the check and the connection (DNS rebinding) cannot redirect the request.
 *
 * @example
 * const policy = createTargetPolicy({ allowedCidrs: ['127.0.0.1/32'] });
 * await policy.check(new URL('http://127.0.0.1:9000/hook')); // { ok: true, address: '127.0.0.1', ... }
 * await policy.check(new URL('http://169.254.169.254/latest')); // { ok: false, reason: '... cloud metadata address ...' }
 */
export interface TargetPolicy {
  /** The checks that need no DNS: scheme, host allow-list, and an IP literal's address. Undefined when allowed. */
  refuseUrl(url: URL): string | undefined;
  /** Resolves the URL's host and checks every address. */
  check(url: URL): Promise<TargetCheck>;
  /** The verdict on one address: undefined when allowed, else the reason. */
  refuseAddress(address: string): string | undefined;
}

interface Range {
  readonly bytes: Uint8Array;
  readonly prefix: number;
  readonly label: string;
}

const BLOCKED_V4: ReadonlyArray<readonly [string, string]> = [
  ['0.0.0.0/8', 'the "this network" range'],
  ['10.0.0.0/8', 'a private range'],
  ['100.64.0.0/10', 'the carrier-grade NAT range'],
  ['127.0.0.0/8', 'the loopback range'],
  ['169.254.0.0/16', 'the link-local range'],
  ['172.16.0.0/12', 'a private range'],
  ['192.0.0.0/24', 'the IETF protocol assignments range'],
  ['192.0.2.0/24', 'a documentation range'],
  ['192.88.99.0/24', 'the 6to4 relay range'],
  ['192.168.0.0/16', 'a private range'],
  ['198.18.0.0/15', 'the benchmarking range'],
  ['198.51.100.0/24', 'a documentation range'],
  ['203.0.113.0/24', 'a documentation range'],
  ['224.0.0.0/4', 'the multicast range'],
  ['240.0.0.0/4', 'the reserved range'],
];
const BLOCKED_V6: ReadonlyArray<readonly [string, string]> = [
  ['::/128', 'the unspecified range'],
  ['::1/128', 'the loopback range'],
  ['::/96', 'the deprecated IPv4-compatible range'],
  ['64:ff9b:1::/48', 'the local NAT64 range'],
  ['100::/64', 'the discard range'],
  ['2001::/32', 'the Teredo range'],
  ['2001:db8::/32', 'a documentation range'],
  ['fc00::/7', 'the unique-local range'],
  ['fe80::/10', 'the link-local range'],
  ['fec0::/10', 'the site-local range'],
  ['ff00::/8', 'the multicast range'],
];
/** Instance metadata services: AWS/GCP/Azure/OpenStack, AWS ECS, AWS IPv6, Alibaba, Oracle. */
const METADATA = ['169.254.169.254', '169.254.170.2', 'fd00:ec2::254', '100.100.100.200', '192.0.0.192'];

export function createTargetPolicy(options: TargetPolicyOptions = {}): TargetPolicy {
  const hosts = (options.allowedHosts ?? []).map((host, index) => {
    const normal = host.trim().toLowerCase().replace(/\.$/, '');
    if (normal === '' || /\s/.test(normal)) {
      throw new GpError('GP_CONFIG_INVALID', `allowedHosts[${index}]: expected a host name like "hooks.example.com" or "*.example.com", got ${JSON.stringify(host)}`, { field: `allowedHosts[${index}]` });
    }
    return normal;
  });
  const allowed = (options.allowedCidrs ?? []).map((cidr, index) => {
    const range = parseCidr(cidr, 'allowed range');
    if (range === undefined) {
      throw new GpError('GP_CONFIG_INVALID', `allowedCidrs[${index}]: expected an address range like "10.0.0.0/8" or "fd12::/16", got ${JSON.stringify(cidr)}`, { field: `allowedCidrs[${index}]` });
    }
    return range;
  });
  const blocked = [...BLOCKED_V4, ...BLOCKED_V6].map(([cidr, label]) => parseCidr(cidr, label) as Range);
  const metadata = METADATA.map((address) => parseAddress(address) as Uint8Array);
  const resolve = options.resolve ?? systemResolver;

  function hostAllowed(hostname: string): boolean {
    if (hosts.length === 0) return true;
    return hosts.some((entry) => (entry.startsWith('*.') ? hostname.endsWith(entry.slice(1)) && hostname.length > entry.length - 1 : hostname === entry));
  }

  function refuseAddress(address: string): string | undefined {
    const bytes = parseAddress(address);
    if (bytes === undefined) return `${address} is not an IP address`;
    return refuseBytes(bytes, address);
  }

  function refuseBytes(bytes: Uint8Array, shown: string): string | undefined {
    if (metadata.some((entry) => sameBytes(entry, bytes))) {
      const listed = allowed.some((range) => range.prefix === range.bytes.length * 8 && sameBytes(range.bytes, bytes));
      return listed ? undefined : `${shown} is a cloud metadata address`;
    }
    if (allowed.some((range) => inRange(bytes, range))) return undefined;
    const embedded = embeddedIpv4(bytes);
    if (embedded !== undefined) return refuseBytes(embedded, `${shown} (IPv4 ${embedded.join('.')})`);
    const range = blocked.find((candidate) => inRange(bytes, candidate));
    return range === undefined ? undefined : `${shown} is in ${range.label} (${formatRange(range)}); allow it in alerts.delivery.allow.cidrs if it is meant`;
  }

  function refuseUrl(url: URL): string | undefined {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return `the scheme ${url.protocol.replace(':', '')} is not http or https`;
    const hostname = hostOf(url);
    if (!hostAllowed(hostname)) return `the host ${hostname} is not in alerts.delivery.allow.hosts`;
    if (isIP(hostname) !== 0) return refuseAddress(hostname);
    return undefined;
  }

  return {
    refuseUrl,
    refuseAddress,
    async check(url: URL): Promise<TargetCheck> {
      const refused = refuseUrl(url);
      if (refused !== undefined) return { ok: false, reason: `target refused: ${refused}`, transient: false };
      const hostname = hostOf(url);
      const family = isIP(hostname);
      if (family !== 0) return { ok: true, hostname, address: hostname, family: family === 4 ? 4 : 6 };
      let addresses: readonly ResolvedAddress[];
      try {
        addresses = await resolve(hostname);
      } catch (error) {
        return { ok: false, reason: `cannot resolve ${hostname}: ${error instanceof Error ? error.message : String(error)}`, transient: true };
      }
      if (addresses.length === 0) return { ok: false, reason: `cannot resolve ${hostname}: no addresses`, transient: true };
      // Every answer must be allowed: a name that mixes a public and an internal address is refused.
      for (const { address } of addresses) {
        const reason = refuseAddress(address);
        if (reason !== undefined) return { ok: false, reason: `target refused: ${hostname} resolves to ${reason}`, transient: false };
      }
      const first = addresses[0] as ResolvedAddress;
      return { ok: true, hostname, address: stripZone(first.address), family: first.family };
    },
  };
}

async function systemResolver(hostname: string): Promise<readonly ResolvedAddress[]> {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((answer) => ({ address: answer.address, family: answer.family === 6 ? 6 : 4 }));
}

/** The URL's host name without IPv6 brackets, lower case, without a trailing dot. */
function hostOf(url: URL): string {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function stripZone(address: string): string {
  const zone = address.indexOf('%');
  return zone === -1 ? address : address.slice(0, zone);
}

/** 4 or 16 bytes, or undefined when the text is not an IP address. */
export function parseAddress(text: string): Uint8Array | undefined {
  const address = stripZone(text);
  const family = isIP(address);
  if (family === 4) return Uint8Array.from(address.split('.').map(Number));
  if (family !== 6) return undefined;
  let head = address;
  let tail: number[] = [];
  // An IPv4 tail (::ffff:10.0.0.1) is two 16-bit groups.
  const lastColon = address.lastIndexOf(':');
  const last = address.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = last.split('.').map(Number);
    tail = [((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0)];
    head = address.slice(0, lastColon + 1);
    if (!head.endsWith('::')) head = head.slice(0, -1);
  }
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  let words: number[];
  const gap = head.indexOf('::');
  if (gap === -1) {
    words = [...groups(head), ...tail];
  } else {
    const left = groups(head.slice(0, gap));
    const right = [...groups(head.slice(gap + 2)), ...tail];
    words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  if (words.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  words.forEach((word, index) => {
    bytes[index * 2] = word >> 8;
    bytes[index * 2 + 1] = word & 0xff;
  });
  return bytes;
}

function parseCidr(text: string, label: string): Range | undefined {
  const slash = text.indexOf('/');
  const bytes = parseAddress(slash === -1 ? text : text.slice(0, slash));
  if (bytes === undefined) return undefined;
  const prefixText = slash === -1 ? String(bytes.length * 8) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bytes.length * 8) return undefined;
  return { bytes, prefix, label };
}

function inRange(bytes: Uint8Array, range: Range): boolean {
  if (bytes.length !== range.bytes.length) return false;
  let bits = range.prefix;
  for (let index = 0; bits > 0; index += 1, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[index] ?? 0) & mask) !== ((range.bytes[index] ?? 0) & mask)) return false;
  }
  return true;
}

/** The IPv4 address an IPv6 address carries: IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) or 6to4 (2002::/16). */
function embeddedIpv4(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== 16) return undefined;
  const zeros = (from: number, to: number): boolean => bytes.slice(from, to).every((byte) => byte === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12, 16);
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(4, 12)) return bytes.slice(12, 16);
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return bytes.slice(2, 6);
  return undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

function formatRange(range: Range): string {
  if (range.bytes.length === 4) return `${range.bytes.join('.')}/${range.prefix}`;
  const words: string[] = [];
  for (let index = 0; index < 16; index += 2) words.push((((range.bytes[index] ?? 0) << 8) | (range.bytes[index + 1] ?? 0)).toString(16));
  return `${words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}/${range.prefix}`;
}
