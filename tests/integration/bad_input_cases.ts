/**
 * The bad-input table of the data side (issue 9): objects, manifest documents and annotations,
 * each with the log line the agent must write and what the kernel must (and must not) hold
 * afterwards. Used by bad_input_test.ts, which feeds every case to ONE agent run inside a
 * throwaway network namespace (one manifests file per case) and checks each case on its own.
 *
 * Every case carries a witness: a Service of its own (ClusterIP 10.96.1xx.y, port 80) that must
 * be served whatever the bad part is, so "the rest is still served" is checked per case.
 *
 * Addresses exist only as data inside the test namespace: node 192.0.2.11, ClusterIPs
 * 10.96.100.0/22, pods 10.245.0.0/16, endpoints 10.246.0.0/16, external IPs 198.18.0.0/16, LB IPs
 * 198.19.0.0/16.
 *
 * @module
 */

// deno-lint-ignore no-explicit-any
type Obj = any;

/** Namespace and node of the table; `buildCases` may rename them (a shared API server needs unique names). */
export let NS = "bad";
export let NODE = "node-1";
export const NODE_IP = "192.0.2.11";

/** Names the table's namespace and node (before building it). */
export function useNames(ns: string, node: string): void {
  NS = ns;
  NODE = node;
}

export interface BadCase {
  id: string;
  /** Text of the case's manifests file (objects, or raw documents for document cases). */
  text: string;
  /** The objects (for feeding them through the API server too); absent for raw-document cases. */
  objects?: Obj[];
  /** A line the agent must log. */
  log: RegExp;
  /** Substrings the kernel dump (nft ruleset + iptables-save + ipset save) must contain. */
  present: string[];
  /** Substrings it must not contain. */
  absent: string[];
}

const oct = (i: number) => `${100 + (i >> 8)}.${i & 255}`;
export const cip = (i: number) => `10.96.${oct(i)}`;
export const podIp = (i: number) => `10.245.${i >> 8}.${(i & 255) || 254}`;
export const epIp = (i: number) => `10.246.${i >> 8}.${(i & 255) || 254}`;
export const extIp = (i: number) => `198.18.${i >> 8}.${(i & 255) || 254}`;
export const lbIp = (i: number) => `198.19.${i >> 8}.${(i & 255) || 254}`;

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
/** The value as the agent quotes it in a problem line. */
const shown = (v: unknown) => esc((JSON.stringify(v) ?? String(v)).slice(0, 77));

/** What the kernel shows for a served ClusterIP port, and for one endpoint of it. */
export const served = (ip: string, port = 80, proto = "tcp") => `${ip} . ${proto} . ${port} : `;
export const endpoint = (i: number, ip = epIp(i), port = 8080) =>
  `${cip(i)} . tcp . 80 . 0 : ${ip} . ${port}`;
export const isolated = (i: number, dir = "ingress") =>
  `run ${dir} of POD ${NS}/c${i}-p through network policy ${NS}/c${i}-np`;

function svc(i: number, spec: Obj = {}, extra: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: `c${i}`, namespace: NS, ...(extra.metadata ?? {}) },
    spec: {
      clusterIP: cip(i),
      ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
      ...spec,
    },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

function slice(i: number, endpoints: Obj[] = [{ addresses: [epIp(i)] }], ports?: Obj[]): Obj {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `c${i}-s`, namespace: NS, labels: { "kubernetes.io/service-name": `c${i}` } },
    addressType: "IPv4",
    endpoints: endpoints.map((e) => ({ conditions: { ready: true }, nodeName: NODE, ...e })),
    ports: ports ?? [{ name: "http", port: 8080, protocol: "TCP" }],
  };
}

function pod(i: number, o: { ports?: Obj[]; status?: Obj; spec?: Obj } = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `c${i}-p`, namespace: NS, labels: { case: `c${i}` } },
    spec: {
      nodeName: NODE,
      containers: [{ name: "c", image: "x", ports: o.ports ?? [{ name: "web", containerPort: 8080 }] }],
      ...o.spec,
    },
    status: o.status ?? { phase: "Running", podIP: podIp(i), podIPs: [{ ip: podIp(i) }], hostIP: NODE_IP },
  };
}

function policy(i: number, spec: Obj): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `c${i}-np`, namespace: NS },
    spec: { podSelector: { matchLabels: { case: `c${i}` } }, ...spec },
  };
}

const file = (objects: Obj[]) => objects.map((o) => JSON.stringify(o, null, 1)).join("\n---\n") + "\n";

/** Values that are not IP addresses; `distinct` ones cannot occur in a kernel dump by accident. */
const BAD_IPS: Array<[string, boolean]> = [
  ["192.0.2.311", true],
  ["node-a.example.com", true],
  ["10.77.0.1/24", true],
  ["fe80::g", true],
  ["1.2.3", false],
  [" 10.77.0.9", false],
  ["2001:db8::1::2", true],
  ["256.1.1.1", true],
  ["1.2.3.4.5", false],
];

/** Values that are not ports 1-65535. */
const BAD_PORTS: Array<[unknown, string | undefined]> = [
  [0, undefined],
  [-1, undefined],
  [65536, "65536"],
  [70000, "70000"],
  [99999, "99999"],
  [1.5, undefined],
  ["http!", "http!"],
  [true, undefined],
];

const BAD_PROTOCOLS: unknown[] = ["ICMP", "tcp", "HTTP", "SCTPX", 6];

const BAD_CIDRS: Array<[string, boolean]> = [
  ["10.0.0.0/33", true],
  ["10.88.0.0", false],
  ["bogus/8", true],
  ["10.0.0.0/-1", true],
  ["300.0.0.0/8", true],
  ["2001:db8::/129", true],
  ["10.0.0.0/8/8", true],
];

/** Builds the whole table; `i` numbers cases from 1 so each gets its own addresses and names. */
export function buildCases(): BadCase[] {
  const cases: BadCase[] = [];
  let i = 0;
  const add = (id: string, objects: Obj[], log: RegExp, present: string[], absent: string[] = []) => {
    cases.push({ id: `c${i} ${id}`, text: file(objects), objects, log, present, absent });
  };
  const next = () => ++i;

  // --- addresses that are not addresses, in every field that reaches the kernel
  for (const [bad, distinct] of BAD_IPS) {
    const abs = distinct ? [bad] : [];
    let n = next();
    add(
      `Service spec.clusterIP ${JSON.stringify(bad)}`,
      [svc(n, { clusterIP: bad, externalIPs: [extIp(n)] }), slice(n)],
      new RegExp(`Service ${NS}/c${n}: spec\\.clusterIP ${shown(bad)} is not an IP address`),
      [served(extIp(n))],
      abs,
    );
    n = next();
    add(
      `Service spec.externalIPs[0] ${JSON.stringify(bad)}`,
      [svc(n, { externalIPs: [bad, extIp(n)] }), slice(n)],
      new RegExp(`Service ${NS}/c${n}: spec\\.externalIPs\\[0\\] ${shown(bad)} is not an IP address`),
      [served(cip(n)), served(extIp(n)), endpoint(n)],
      abs,
    );
    n = next();
    add(
      `Service status.loadBalancer.ingress[0].ip ${JSON.stringify(bad)}`,
      [
        svc(n, { type: "LoadBalancer" }, {
          status: { loadBalancer: { ingress: [{ ip: bad }, { ip: lbIp(n) }] } },
        }),
        slice(n),
      ],
      new RegExp(
        `Service ${NS}/c${n}: status\\.loadBalancer\\.ingress\\[0\\]\\.ip ${shown(bad)} is not an IP address`,
      ),
      [served(cip(n)), served(lbIp(n))],
      abs,
    );
    n = next();
    add(
      `EndpointSlice endpoints[0].addresses[0] ${JSON.stringify(bad)}`,
      [svc(n), slice(n, [{ addresses: [bad] }, { addresses: [epIp(n)] }])],
      new RegExp(
        `EndpointSlice ${NS}/c${n}-s: endpoints\\[0\\]\\.addresses\\[0\\] ${shown(bad)} is not an IP`,
      ),
      [served(cip(n)), endpoint(n)],
      abs,
    );
    n = next();
    add(
      `Endpoints subsets[0].addresses[0].ip ${JSON.stringify(bad)}`,
      [svc(n), {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: `c${n}`, namespace: NS },
        subsets: [{ addresses: [{ ip: bad }, { ip: epIp(n) }], ports: [{ name: "http", port: 8080 }] }],
      }],
      new RegExp(`Endpoints ${NS}/c${n}: subsets\\[0\\]\\.addresses\\[0\\]\\.ip ${shown(bad)} is not an IP`),
      [served(cip(n)), endpoint(n)],
      abs,
    );
    n = next();
    add(
      `Pod status.podIPs[0] ${JSON.stringify(bad)}`,
      [
        svc(n),
        slice(n),
        pod(n, {
          status: { phase: "Running", podIP: bad, podIPs: [{ ip: bad }, { ip: podIp(n) }] },
        }),
        policy(n, { ingress: [{ from: [{ ipBlock: { cidr: "172.16.0.0/16" } }] }] }),
      ],
      new RegExp(`Pod ${NS}/c${n}-p: status\\.podIPs\\[\\]\\.ip\\[0\\] ${shown(bad)} is not an IP address`),
      [served(cip(n)), isolated(n), `-d ${podIp(n)}`],
      abs,
    );
    n = next();
    add(
      `Node status.addresses InternalIP ${JSON.stringify(bad)}`,
      [svc(n), slice(n), {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: `${NODE}-c${n}` },
        spec: { podCIDR: `10.247.${n & 255}.0/24` },
        status: {
          addresses: [{ type: "InternalIP", address: bad }, { type: "Hostname", address: `${NODE}-c${n}` }],
        },
      }],
      new RegExp(
        `Node ${NODE}-c${n}: status\\.addresses\\[0\\]\\.address \\(InternalIP\\) ${shown(bad)} is not an IP`,
      ),
      [served(cip(n)), endpoint(n)],
      abs,
    );
  }

  // --- the unspecified address: an IP, but no host (ipset refuses it: "Null-valued element")
  {
    let n = next();
    add(
      "Pod status.podIP 0.0.0.0",
      [
        svc(n),
        slice(n),
        pod(n, {
          status: { phase: "Running", podIP: "0.0.0.0", podIPs: [{ ip: "0.0.0.0" }, { ip: podIp(n) }] },
        }),
        policy(n, { ingress: [{ from: [{ podSelector: {} }] }] }),
      ],
      new RegExp(
        `Pod ${NS}/c${n}-p: status\\.podIPs\\[\\]\\.ip\\[0\\] "0\\.0\\.0\\.0" is the unspecified address`,
      ),
      [served(cip(n)), isolated(n), `-d ${podIp(n)}`],
      [" 0.0.0.0\n"],
    );
    n = next();
    add(
      "EndpointSlice address ::",
      [svc(n), {
        ...slice(n, [{ addresses: ["::"] }, { addresses: ["2001:db8:246::" + n.toString(16)] }]),
        addressType: "IPv6",
        metadata: { ...slice(n).metadata, name: `c${n}-s6` },
      }, slice(n)],
      new RegExp(
        `EndpointSlice ${NS}/c${n}-s6: endpoints\\[0\\]\\.addresses\\[0\\] "::" is the unspecified address`,
      ),
      [served(cip(n)), endpoint(n)],
    );
    n = next();
    add(
      "Service spec.externalIPs 0.0.0.0",
      [svc(n, { externalIPs: ["0.0.0.0", extIp(n)] }), slice(n)],
      new RegExp(`Service ${NS}/c${n}: spec\\.externalIPs\\[0\\] "0\\.0\\.0\\.0" is the unspecified address`),
      [served(cip(n)), served(extIp(n))],
      ["0.0.0.0 . tcp"],
    );
  }

  {
    // Not bad: the API server accepts leading zeros (read as decimal); so does the agent, canonically.
    const n = next();
    const sloppy = extIp(n).split(".").map((o) => o.padStart(3, "0")).join(".");
    add(
      `Service spec.externalIPs ${JSON.stringify(sloppy)} (leading zeros, as the API server accepts)`,
      [svc(n, { externalIPs: [sloppy] }), slice(n)],
      new RegExp(`starting on node`),
      [served(cip(n)), served(extIp(n)), `${extIp(n)} . tcp . 80 . 0 : ${epIp(n)} . 8080`],
      [sloppy],
    );
  }

  // --- numbers that are not ports
  for (const [bad, distinct] of BAD_PORTS) {
    const abs = distinct ? [`${cip(i + 1)} . tcp . ${distinct}`] : [];
    let n = next();
    add(
      `Service spec.ports[0].port ${JSON.stringify(bad)}`,
      [
        svc(n, { ports: [{ name: "bad", port: bad }, { name: "http", port: 80, targetPort: 8080 }] }),
        slice(n),
      ],
      new RegExp(
        `Service ${NS}/c${n}: spec\\.ports\\[0\\]\\.port ${shown(bad)} is not a port from 1 to 65535`,
      ),
      [served(cip(n)), endpoint(n)],
      abs,
    );
    if (bad !== 0) { // 0 means "same as port" in both fields
      n = next();
      add(
        `Service spec.ports[0].targetPort ${JSON.stringify(bad)}`,
        [
          svc(n, {
            ports: [{ name: "bad", port: 81, targetPort: bad }, { name: "http", port: 80, targetPort: 8080 }],
          }),
          slice(n),
        ],
        new RegExp(`Service ${NS}/c${n}: spec\\.ports\\[0\\]\\.targetPort ${shown(bad)} is neither a port`),
        [served(cip(n)), endpoint(n)],
        [served(cip(n), 81)],
      );
    }
    if (bad !== 0) {
      n = next();
      add(
        `Service spec.ports[0].nodePort ${JSON.stringify(bad)}`,
        [
          svc(n, { type: "NodePort", ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: bad }] }),
          slice(n),
        ],
        new RegExp(`Service ${NS}/c${n}: spec\\.ports\\[0\\]\\.nodePort ${shown(bad)} is not a port`),
        [served(cip(n)), endpoint(n)],
        distinct ? [`. tcp . ${distinct} :`] : [],
      );
    }
    n = next();
    add(
      `Pod spec.containers[0].ports[0].containerPort ${JSON.stringify(bad)}`,
      [
        svc(n),
        slice(n),
        pod(n, { ports: [{ name: "web", containerPort: bad }, { name: "ok", containerPort: 8080 }] }),
        policy(n, {
          ingress: [{ ports: [{ port: "ok" }, { port: "web" }] }],
        }),
      ],
      new RegExp(
        `Pod ${NS}/c${n}-p: spec\\.containers\\[0\\]\\.ports\\[0\\]\\.containerPort ${
          shown(bad)
        } is not a port`,
      ),
      [served(cip(n)), isolated(n), `--dport 8080`],
      distinct ? [`--dport ${distinct}`] : [],
    );
    n = next();
    add(
      `EndpointSlice ports[0].port ${JSON.stringify(bad)}`,
      [svc(n), slice(n, undefined, [{ name: "x", port: bad }, { name: "http", port: 8080 }])],
      new RegExp(`EndpointSlice ${NS}/c${n}-s: ports\\[0\\]\\.port ${shown(bad)} is not a port`),
      [served(cip(n)), endpoint(n)],
    );
    n = next();
    add(
      `NetworkPolicy ingress[0].ports[0].port ${JSON.stringify(bad)}`,
      [svc(n), slice(n), pod(n), policy(n, { ingress: [{ ports: [{ port: bad }, { port: 8080 }] }] })],
      new RegExp(
        `NetworkPolicy ${NS}/c${n}-np: spec\\.ingress\\[0\\]\\.ports\\[0\\]\\.port ${
          shown(bad)
        } is neither a port`,
      ),
      [served(cip(n)), isolated(n)],
      distinct ? [`--dport ${distinct}`] : [],
    );
    n = next();
    add(
      `NetworkPolicy ingress[0].ports[0].endPort ${JSON.stringify(bad)}`,
      [
        svc(n),
        slice(n),
        pod(n),
        policy(n, { ingress: [{ ports: [{ port: 9000, endPort: bad }, { port: 8080 }] }] }),
      ],
      new RegExp(
        `NetworkPolicy ${NS}/c${n}-np: spec\\.ingress\\[0\\]\\.ports\\[0\\]\\.endPort ${
          shown(bad)
        } must be a port`,
      ),
      [served(cip(n)), isolated(n)],
      distinct ? [`9000:${distinct}`] : [],
    );
  }

  // --- protocols that are not TCP, UDP or SCTP
  for (const bad of BAD_PROTOCOLS) {
    let n = next();
    add(
      `Service spec.ports[0].protocol ${JSON.stringify(bad)}`,
      [
        svc(n, {
          ports: [{ name: "x", port: 81, protocol: bad }, { name: "http", port: 80, targetPort: 8080 }],
        }),
        slice(n),
      ],
      new RegExp(`Service ${NS}/c${n}: spec\\.ports\\[0\\]\\.protocol ${shown(bad)} is not a protocol`),
      [served(cip(n)), endpoint(n)],
      [`${cip(n)} . tcp . 81`],
    );
    n = next();
    add(
      `Pod containerPort protocol ${JSON.stringify(bad)}`,
      [
        svc(n),
        slice(n),
        pod(n, {
          ports: [{ name: "web", containerPort: 9001, protocol: bad }, { name: "ok", containerPort: 8080 }],
        }),
        policy(n, {
          ingress: [{ ports: [{ port: "ok" }, { port: "web" }] }],
        }),
      ],
      new RegExp(
        `Pod ${NS}/c${n}-p: spec\\.containers\\[0\\]\\.ports\\[0\\]\\.protocol ${
          shown(bad)
        } is not a protocol`,
      ),
      [served(cip(n)), isolated(n), "--dport 8080"],
      ["--dport 9001"],
    );
    n = next();
    add(
      `EndpointSlice ports[0].protocol ${JSON.stringify(bad)}`,
      [svc(n), slice(n, undefined, [{ name: "x", port: 9002, protocol: bad }, { name: "http", port: 8080 }])],
      new RegExp(`EndpointSlice ${NS}/c${n}-s: ports\\[0\\]\\.protocol ${shown(bad)} is not a protocol`),
      [served(cip(n)), endpoint(n)],
      [". 9002"],
    );
    n = next();
    add(
      `NetworkPolicy ports[0].protocol ${JSON.stringify(bad)}`,
      [
        svc(n),
        slice(n),
        pod(n),
        policy(n, { ingress: [{ ports: [{ port: 9003, protocol: bad }, { port: 8080 }] }] }),
      ],
      new RegExp(
        `NetworkPolicy ${NS}/c${n}-np: spec\\.ingress\\[0\\]\\.ports\\[0\\]\\.protocol ${
          shown(bad)
        } is not a protocol`,
      ),
      [served(cip(n)), isolated(n)],
      ["--dport 9003"],
    );
  }

  // --- prefixes that are not CIDRs
  for (const [bad, distinct] of BAD_CIDRS) {
    const abs = distinct ? [bad] : [];
    let n = next();
    add(
      `NetworkPolicy ipBlock.cidr ${JSON.stringify(bad)} (other peer kept)`,
      [
        svc(n),
        slice(n),
        pod(n),
        policy(n, {
          ingress: [{
            from: [{ ipBlock: { cidr: bad } }, { ipBlock: { cidr: `172.${16 + (n & 15)}.${n & 255}.0/24` } }],
          }],
        }),
      ],
      new RegExp(
        `NetworkPolicy ${NS}/c${n}-np: spec\\.ingress\\[0\\]\\.from\\[0\\]\\.ipBlock\\.cidr ${
          shown(bad)
        } is not a CIDR`,
      ),
      [served(cip(n)), isolated(n), `172.${16 + (n & 15)}.${n & 255}.0/24`],
      abs,
    );
    n = next();
    add(
      `NetworkPolicy ipBlock.except ${JSON.stringify(bad)} (only peer: rule dropped, pod stays isolated)`,
      [
        svc(n),
        slice(n),
        pod(n),
        policy(n, {
          ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: [bad] } }] }],
        }),
      ],
      new RegExp(
        `NetworkPolicy ${NS}/c${n}-np: spec\\.ingress\\[0\\] has no usable from left; the rule is dropped`,
      ),
      [served(cip(n)), isolated(n)],
      abs,
    );
    n = next();
    add(
      `Node spec.podCIDR ${JSON.stringify(bad)}`,
      [svc(n), slice(n), {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: `${NODE}-c${n}` },
        spec: { podCIDR: bad },
        status: { addresses: [{ type: "InternalIP", address: `192.0.2.${100 + (n & 127)}` }] },
      }],
      new RegExp(`Node ${NODE}-c${n}: spec\\.podCIDR ${shown(bad)} is not a CIDR`),
      [served(cip(n)), endpoint(n)],
      abs,
    );
  }

  // --- NetworkPolicies that cannot be fully read: never allow-all (fail closed)
  const failClosed: Array<[string, Obj, RegExp]> = [
    ["podSelector operator", {
      podSelector: { matchExpressions: [{ key: "case", operator: "Equals", values: ["x"] }] },
    }, /spec\.podSelector\.matchExpressions\[0\]\.operator "Equals" is not In/],
    ["podSelector In without values", {
      podSelector: { matchExpressions: [{ key: "case", operator: "In" }] },
    }, /spec\.podSelector\.matchExpressions\[0\]\.values \[\] must not be empty for In/],
    [
      "podSelector not a map",
      { podSelector: "app=web" },
      /spec\.podSelector "app=web" is not a label selector/,
    ],
    ["peer selector operator", {
      ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: "a", operator: "Has" }] } }] }],
    }, /from\[0\]\.podSelector\.matchExpressions\[0\]\.operator "Has"/],
    ["namespaceSelector operator", {
      ingress: [{
        from: [{ namespaceSelector: { matchExpressions: [{ key: "a", operator: "in", values: ["b"] }] } }],
      }],
    }, /from\[0\]\.namespaceSelector\.matchExpressions\[0\]\.operator "in"/],
    [
      "empty peer",
      { ingress: [{ from: [{}] }] },
      /from\[0\] \{\} has no podSelector, namespaceSelector or ipBlock/,
    ],
    ["ipBlock with a selector", {
      ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }] }],
    }, /from\[0\] \["ipBlock","podSelector"\] sets ipBlock with a selector/],
    [
      "every port bad",
      { ingress: [{ ports: [{ port: 0 }, { protocol: "ICMP" }] }] },
      /spec\.ingress\[0\] has no usable ports left; the rule is dropped/,
    ],
    [
      "egress peer cidr bad",
      { policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "x/1" } }] }] },
      /spec\.egress\[0\] has no usable to left/,
    ],
    [
      "policyTypes typo",
      { policyTypes: ["Ingres"], ingress: [{ from: [{ ipBlock: { cidr: "x/1" } }] }] },
      /spec\.policyTypes\[0\] "Ingres" is not Ingress or Egress/,
    ],
  ];
  for (const [what, spec, re] of failClosed) {
    const n = next();
    const dir = spec.policyTypes?.[0] === "Egress" ? "egress" : "ingress";
    // An unreadable podSelector isolates its whole namespace: give it one of its own.
    const ns = what.startsWith("podSelector") ? `${NS}-c${n}` : NS;
    const objects = [svc(n), slice(n), pod(n), policy(n, spec)];
    for (const o of objects) o.metadata.namespace = ns;
    add(
      `NetworkPolicy ${what}: the selected pod stays isolated`,
      objects,
      new RegExp(`NetworkPolicy ${ns}/c${n}-np: .*${re.source}`),
      [served(cip(n)), `run ${dir} of POD ${ns}/c${n}-p through network policy ${ns}/c${n}-np`],
      [`${dir} of POD ${ns}/c${n}-p: no network policy selects it`],
    );
  }
  {
    // Its neighbour in that namespace, selected by no valid policy, is isolated too (fail closed).
    const n = next();
    const ns = `${NS}-c${n}`;
    const objects = [svc(n), slice(n), pod(n), {
      ...policy(n, {
        podSelector: { matchExpressions: [{ key: "tier", operator: "Matches", values: ["x"] }] },
      }),
    }];
    objects[2].metadata.labels = { other: "pod" };
    for (const o of objects) o.metadata.namespace = ns;
    add(
      "NetworkPolicy with an unreadable podSelector isolates every pod of its namespace",
      objects,
      new RegExp(
        `NetworkPolicy ${ns}/c${n}-np: spec\\.podSelector cannot be read; the policy isolates every pod`,
      ),
      [served(cip(n)), `run ingress of POD ${ns}/c${n}-p through network policy ${ns}/c${n}-np`],
      [`ingress of POD ${ns}/c${n}-p: no network policy selects it`],
    );
  }

  // --- names and objects that cannot be identified: that object alone is skipped
  const badNames: Array<[string, Obj, RegExp]> = [
    ["upper-case name", { metadata: { name: "Web" } }, /metadata\.name "Web" is not a DNS-1123 name/],
    ["name with a space", { metadata: { name: "web x" } }, /metadata\.name "web x" is not a DNS-1123 name/],
    ["name with a quote", { metadata: { name: 'we"b' } }, /metadata\.name "we\\"b" is not a DNS-1123 name/],
    [
      "name with a newline",
      { metadata: { name: "we\nb" } },
      /metadata\.name "we\\nb" is not a DNS-1123 name/,
    ],
    [
      "name too long",
      { metadata: { name: "a".repeat(254) } },
      /metadata\.name "a{70,}\.\.\. is not a DNS-1123 name/,
    ],
    ["no name", { metadata: {} }, /Service [a-z0-9-]+\/<unnamed>: metadata\.name is missing/],
    [
      "bad namespace",
      { metadata: { namespace: "Shop" } },
      /metadata\.namespace "Shop" is not a DNS-1123 label/,
    ],
    [
      "service type",
      { spec: { type: "Magic" } },
      /spec\.type "Magic" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName/,
    ],
  ];
  for (const [what, over, re] of badNames) {
    const n = next();
    const bad = svc(n, { clusterIP: `10.96.99.${n & 255}`, ...(over.spec ?? {}) });
    bad.metadata = { namespace: NS, name: `c${n}`, ...(over.metadata ?? {}) };
    if (what === "no name") delete bad.metadata.name;
    const witness = svc(n, {}, {});
    witness.metadata.name = `c${n}-ok`;
    add(
      `Service ${what}: skipped alone`,
      [bad, witness, {
        ...slice(n),
        metadata: { ...slice(n).metadata, labels: { "kubernetes.io/service-name": `c${n}-ok` } },
      }],
      re,
      [served(cip(n)), endpoint(n)],
      [`10.96.99.${n & 255} `],
    );
  }

  // --- other values that reach the kernel
  const misc: Array<[string, Obj, RegExp]> = [
    ["sessionAffinity timeout 0", {
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } },
    }, /timeoutSeconds 0 is not a number of seconds from 1 to 86400/],
    ["sessionAffinity timeout 100000", {
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 100000 } },
    }, /timeoutSeconds 100000 is not a number of seconds/],
    ["sessionAffinity timeout text", {
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: "1h" } },
    }, /timeoutSeconds "1h" is not a number of seconds/],
    ["healthCheckNodePort 70000", {
      type: "LoadBalancer",
      externalTrafficPolicy: "Local",
      healthCheckNodePort: 70000,
    }, /spec\.healthCheckNodePort 70000 is not a port/],
  ];
  for (const [what, spec, re] of misc) {
    const n = next();
    // (ClientIP affinity is served through per-service chains, not the endpoints map.)
    add(what, [svc(n, spec), slice(n)], new RegExp(`Service ${NS}/c${n}: .*${re.source}`), [
      served(cip(n)),
      spec.sessionAffinity ? `dnat to ${epIp(n)}:8080` : endpoint(n),
    ], ["100000s", "70000"]);
  }
  {
    const n = next();
    add(
      "EndpointSlice addressType Bogus: that slice alone is skipped",
      [svc(n), slice(n), {
        ...slice(n, [{ addresses: ["10.246.250.1"] }]),
        metadata: { name: `c${n}-s2`, namespace: NS, labels: { "kubernetes.io/service-name": `c${n}` } },
        addressType: "Bogus",
      }],
      new RegExp(
        `EndpointSlice ${NS}/c${n}-s2: addressType "Bogus" is not IPv4, IPv6 or FQDN; object skipped`,
      ),
      [served(cip(n)), endpoint(n)],
      ["10.246.250.1 "],
    );
  }
  {
    const n = next();
    add(
      "EndpointSlice IPv6 address in an IPv4 slice",
      [svc(n), slice(n, [{ addresses: ["2001:db8::7"] }, { addresses: [epIp(n)] }])],
      new RegExp(
        `EndpointSlice ${NS}/c${n}-s: endpoints\\[0\\]\\.addresses\\[0\\] "2001:db8::7" is not an IPv4 address`,
      ),
      [served(cip(n)), endpoint(n)],
      ["2001:db8::7"],
    );
  }

  // --- service annotations with values the proxy does not accept: warned, service served
  const annotations: Array<[string, string, RegExp]> = [
    ["kube-router.io/service.scheduler", "fastest", /unknown scheduler "fastest", using rr/],
    ["kube-router.io/service.scheduler", "", /unknown scheduler "", using rr/],
    ["kube-router.io/service.schedflags", "flag-9", /flag-9/],
    ["kube-router.io/service.dsr", "ipip", /kube-router\.io\/service\.dsr/],
    ["kube-router.io/service.dsr", "tunnelx", /kube-router\.io\/service\.dsr/],
  ];
  for (const [key, value, re] of annotations) {
    const n = next();
    add(
      `annotation ${key}=${JSON.stringify(value)}`,
      [svc(n, {}, { metadata: { annotations: { [key]: value } } }), slice(n)],
      new RegExp(`service ${NS}/c${n} .*${re.source}`),
      [served(cip(n)), endpoint(n)],
    );
  }

  // --- a kind that is a near miss of one we read: said, not silently ignored
  for (const kind of ["Servce", "service", "NetworkPolicys", "Endpointslice"]) {
    const n = next();
    const typo = { ...svc(n, { clusterIP: `10.96.96.${n & 255}` }), kind };
    typo.metadata.name = `c${n}-typo`;
    add(
      `kind ${JSON.stringify(kind)}`,
      [svc(n), slice(n), typo],
      new RegExp(`kind ${shown(kind)} is not one we read \\(did you mean [A-Za-z]+\\?\\); skipped`),
      [served(cip(n)), endpoint(n)],
      [`10.96.96.${n & 255} `],
    );
  }

  // --- conflicts in valid data
  {
    const n = next();
    const older = svc(n, { externalIPs: [extIp(n)] }, {
      metadata: { creationTimestamp: "2024-01-01T00:00:00Z" },
    });
    const newer = svc(n, { clusterIP: `10.96.98.${n & 255}`, externalIPs: [extIp(n)] }, {
      metadata: { creationTimestamp: "2024-06-01T00:00:00Z" },
    });
    newer.metadata.name = `c${n}-b`;
    add(
      "two Services on one externalIP:port: the older is served, the newer's REJECT does not block it",
      [older, newer, slice(n)],
      new RegExp(
        `service ${NS}/c${n}-b .*${
          esc(extIp(n))
        }:80/tcp is also claimed by service ${NS}/c${n}, which is older`,
      ),
      [served(cip(n)), `${extIp(n)} . tcp . 80 . 0 : ${epIp(n)} . 8080`],
      [`${extIp(n)} . tcp . 80,`, `${extIp(n)} . tcp . 80 }`],
    );
  }
  {
    const n = next();
    const dup = svc(n, { clusterIP: `10.96.97.${n & 255}` });
    add(
      "the same Service defined twice in manifests: the later wins, said once",
      [svc(n), slice(n), dup],
      new RegExp(`Service ${NS}/c${n} is also defined at .*; the later definition wins`),
      [served(`10.96.97.${n & 255}`)],
      [served(cip(n))],
    );
  }
  return cases;
}

/** Raw-document cases: one bad document in a file whose other documents are fine. */
export function buildDocumentCases(first: number): BadCase[] {
  const cases: BadCase[] = [];
  let i = first;
  const docs: Array<[string, string, RegExp]> = [
    ["YAML syntax error", "kind: Service\nmetadata: { name: [unclosed\n", /document 2: .*document skipped/],
    ["JSON syntax error", '{"kind": "Service", "metadata": {"name": "x"}', /document 2: .*document skipped/],
    [
      "a scalar document",
      "just a string\n",
      /document 2: is "just a string", not an object; document skipped/,
    ],
    [
      "a List without items",
      '{"kind":"List","items":"none"}',
      /document 2: kind List has no items list; document skipped/,
    ],
    [
      "a List with a non-object item",
      '{"kind":"List","items":[42]}',
      /document 2: items\[0\]: not an object; skipped/,
    ],
    [
      "an object without kind",
      '{"apiVersion":"v1","metadata":{"name":"x"}}',
      /document 2: object has no kind; skipped/,
    ],
    ["tab-indented YAML", "kind: Service\nmetadata:\n\tname: x\n", /document 2: .*document skipped/],
    ["duplicate keys", "kind: Service\nkind: Pod\n", /document 2: .*document skipped/],
    ["unclosed JSON array", "[1, 2", /document 2: .*document skipped/],
    ["binary garbage", "\u0000\u0001\u0002{{{", /document 2: .*skipped/],
  ];
  for (const [what, doc, re] of docs) {
    const n = ++i;
    const good = [svc(n), slice(n)].map((o) => JSON.stringify(o)).join("\n---\n");
    const [a, b] = good.split("\n---\n");
    cases.push({
      id: `c${n} manifests: ${what}`,
      text: `${a}\n---\n${doc}\n---\n${b}\n`,
      log: new RegExp(`c${n}\\.json: ${re.source}`),
      present: [served(cip(n)), endpoint(n)],
      absent: [],
    });
  }
  return cases;
}

/** Files that must stop the agent at start-up (exit 2), each with a valid neighbour file. */
export const FATAL_FILES: Array<[string, string | "fifo" | "dir-fifo", RegExp]> = [
  ["every document bad", "kind: Service\nmetadata: { name: [unclosed\n", /bad\.yaml: no valid object/],
  ["every object skipped", '{"kind":"Service","metadata":{"name":"Upper"}}', /bad\.yaml: no valid object/],
  ["empty file", "", /bad\.yaml: holds no object/],
  ["comments only", "# nothing\n---\n# still nothing\n", /bad\.yaml: holds no object/],
  ["JSON garbage", "{{{{", /bad\.yaml: no valid object/],
  [
    "a List of nothing valid",
    '{"kind":"List","items":[{"kind":"Pod","metadata":{}}]}',
    /bad\.yaml: no valid object/,
  ],
  ["a FIFO named *.yaml", "fifo", /bad\.yaml: not a regular file .*refused/],
  ["--manifests is a FIFO", "dir-fifo", /not a regular file or a directory; refused/],
];

/** The cluster every case shares: this node and the namespace. */
export function baseText(): string {
  return file([
    {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: NODE },
      spec: { podCIDR: "10.244.1.0/24" },
      status: { addresses: [{ type: "InternalIP", address: NODE_IP }] },
    },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
  ]);
}

/**
 * Bad values of every `kube-router.io/*` node annotation (reference §2.2): the key, the value, the
 * annotations it needs beside it to be read at all, and the problem the router must report (it
 * names the node, the key and the value). Used by bad_node_annotations_test.ts, through the real
 * API server, and by `annotate --validate`.
 */
export interface NodeAnnotationCase {
  key: string;
  value: string;
  with?: Record<string, string>;
  problem: RegExp;
}

const PEER = { "kube-router.io/peer.ips": "192.0.2.50", "kube-router.io/peer.asns": "65000" };
const PREPEND = /need both an ASN and a repeat count 1-255/;
const NOT_ASN = /is malformed or reserved/;
export const NODE_ANNOTATION_CASES: NodeAnnotationCase[] = [
  { key: "kube-router.io/bgp-local-addresses", value: "bogus", problem: /"bogus" is not an IP address/ },
  { key: "kube-router.io/bgp-local-addresses", value: "300.1.1.1", problem: /"300\.1\.1\.1" is not an IP/ },
  {
    key: "kube-router.io/peer.ips",
    value: "not-an-ip",
    with: { "kube-router.io/peer.asns": "65000" },
    problem: /peer IP "not-an-ip"/,
  },
  {
    key: "kube-router.io/peer.ips",
    value: "192.0.2.300",
    with: { "kube-router.io/peer.asns": "65000" },
    problem: /"192\.0\.2\.300" is not/,
  },
  {
    key: "kube-router.io/peer.asns",
    value: "abc",
    with: { "kube-router.io/peer.ips": "192.0.2.50" },
    problem: NOT_ASN,
  },
  {
    key: "kube-router.io/peer.asns",
    value: "23456",
    with: { "kube-router.io/peer.ips": "192.0.2.50" },
    problem: NOT_ASN,
  },
  {
    key: "kube-router.io/peer.asns",
    value: "4294967296",
    with: { "kube-router.io/peer.ips": "192.0.2.50" },
    problem: NOT_ASN,
  },
  { key: "kube-router.io/peer.passwords", value: "%%%", with: PEER, problem: /not valid base64/ },
  { key: "kube-router.io/peer.ports", value: "70000", with: PEER, problem: /port "70000" is not 1-65535/ },
  { key: "kube-router.io/peer.ports", value: "http", with: PEER, problem: /port "http" is not 1-65535/ },
  { key: "kube-router.io/peer.localips", value: "nope", with: PEER, problem: /local IP "nope"/ },
  { key: "kube-router.io/node.asn", value: "-5", problem: /"-5" is not an ASN/ },
  { key: "kube-router.io/node.asn", value: "4294967296", problem: /"4294967296" is not an ASN/ },
  { key: "kube-router.io/node.asn", value: "asn64512", problem: /"asn64512" is not an ASN/ },
  {
    key: "kube-router.io/path-prepend.as",
    value: "xyz",
    with: { "kube-router.io/path-prepend.repeat-n": "2" },
    problem: PREPEND,
  },
  {
    key: "kube-router.io/path-prepend.repeat-n",
    value: "300",
    with: { "kube-router.io/path-prepend.as": "65000" },
    problem: PREPEND,
  },
  {
    key: "kube-router.io/path-prepend.repeat-n",
    value: "0",
    with: { "kube-router.io/path-prepend.as": "65000" },
    problem: PREPEND,
  },
  { key: "kube-router.io/node.bgp.communities", value: "70000:1", problem: /"70000:1" is not a community/ },
  { key: "kube-router.io/node.bgp.communities", value: "no-such", problem: /"no-such" is not a community/ },
  {
    key: "kube-router.io/node.bgp.customimportreject",
    value: "10.0.0.0/33",
    problem: /"10\.0\.0\.0\/33" is not a CIDR/,
  },
  { key: "kube-router.io/node.bgp.customimportreject", value: "bogus", problem: /"bogus" is not a CIDR/ },
  { key: "kube-router.io/rr.server", value: "1.2.3.4.5", problem: /"1\.2\.3\.4\.5" is not a cluster id/ },
  { key: "kube-router.io/rr.server", value: "-1", problem: /"-1" is not a cluster id/ },
  { key: "kube-router.io/rr.client", value: "not-an-id", problem: /"not-an-id" is not a cluster id/ },
  { key: "kube-router.io/peers", value: "{{{", problem: /not valid YAML/ },
  {
    key: "kube-router.io/peers",
    value: "- remoteip: 192.0.2.50",
    problem: /remoteip and remoteasn are required/,
  },
  { key: "kube-router.io/peers", value: "- remoteip: bogus\n  remoteasn: 65000", problem: /peer IP "bogus"/ },
  {
    key: "kube-router.io/peers",
    value: "- remoteip: 192.0.2.50\n  remoteasn: 23456",
    problem: /peer ASN 23456/,
  },
  { key: "kube-router.io/pod-cidr", value: "10.244.1.0/33", problem: /"10\.244\.1\.0\/33" is not a CIDR/ },
  { key: "kube-router.io/pod-cidr", value: "bogus", problem: /"bogus" is not a CIDR/ },
  { key: "kube-router.io/pod-cidrs", value: "nope", problem: /"nope" is not a CIDR/ },
];
