/**
 * The FFI sockets over loopback only (127.0.0.1 / ::1 in the test process's namespace): MD5
 * keys accepted and refused, TTL read back from the socket, errors carrying errno. Peers in
 * namespaces are in tests/integration/bgp_md5_*.
 */
import assert from "node:assert/strict";
import { connectTcp, FfiConn, listenTcp, TransportError, writeAll } from "./mod.ts";
import { C } from "./libc.ts";

async function readN(c: { read(p: Uint8Array): Promise<number | null> }, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await c.read(out.subarray(off));
    if (r === null) throw new Error("eof");
    off += r;
  }
  return out;
}

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test(`ffi: MD5 session over ${host} carries data both ways; TTL is applied`, async () => {
    const l = listenTcp({ hostname: host, port: 0, passwords: { [host]: "pw-1" } });
    try {
      const accepted = (async () => {
        for await (const c of l) return c;
        throw new Error("listener ended");
      })();
      const c = await connectTcp({ hostname: host, port: l.addr.port, password: "pw-1", ttl: 7 });
      const s = await accepted;
      try {
        assert.ok(c instanceof FfiConn);
        assert.equal(c.remoteAddr.port, l.addr.port);
        assert.equal(s.remoteAddr.port, c.localAddr.port);
        const opt = host.includes(":") ? [C.IPPROTO_IPV6, C.IPV6_UNICAST_HOPS] : [C.IPPROTO_IP, C.IP_TTL];
        assert.equal(c.getIntOption(opt[0], opt[1]), 7);
        await writeAll(c, new TextEncoder().encode("hello"));
        assert.equal(new TextDecoder().decode(await readN(s, 5)), "hello");
        await writeAll(s, new Uint8Array([1, 2, 3]));
        assert.deepEqual([...await readN(c, 3)], [1, 2, 3]);
        c.close();
        assert.equal(await s.read(new Uint8Array(10)), null);
      } finally {
        c.close();
        s.close();
      }
    } finally {
      l.close();
    }
  });
}

Deno.test("ffi: wrong or missing MD5 password never connects; setPassword changes it at run time", async () => {
  const l = listenTcp({ hostname: "127.0.0.1", port: 0, passwords: { "127.0.0.1": "right" } });
  try {
    for (const password of ["wrong", undefined]) {
      await assert.rejects(
        connectTcp({
          hostname: "127.0.0.1",
          port: l.addr.port,
          password,
          localAddress: "127.0.0.1",
          signal: AbortSignal.timeout(1500),
        }),
        (e: Error) => e.name === "TimeoutError",
      );
    }
    l.setPassword("127.0.0.1", "new");
    const it = l[Symbol.asyncIterator]();
    const c = await connectTcp({ hostname: "127.0.0.1", port: l.addr.port, password: "new" });
    const s = (await it.next()).value!;
    c.close();
    s.close();
    l.setPassword("127.0.0.1", null);
    l.setPassword("127.0.0.1", null); // removing an absent key is fine
    const c2 = await connectTcp({ hostname: "127.0.0.1", port: l.addr.port, localAddress: "127.0.0.1" });
    const s2 = (await it.next()).value!;
    c2.close();
    s2.close();
  } finally {
    l.close();
  }
});

Deno.test("ffi: errors are TransportError with errno and context", async () => {
  // A port nobody listens on: ECONNREFUSED from SO_ERROR after the non-blocking connect.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await assert.rejects(connectTcp({ hostname: "127.0.0.1", port, ttl: 2 }), (e: unknown) => {
    assert.ok(e instanceof TransportError);
    assert.equal(e.code, "ECONNREFUSED");
    assert.match(e.message, /^connect 127\.0\.0\.1:\d+: ECONNREFUSED \(Connection refused\)$/);
    return true;
  });
  await assert.rejects(
    connectTcp({ hostname: "10.0.0.999", port: 1, ttl: 2 }),
    /not an IPv4 or IPv6 address/,
  );
  await assert.rejects(connectTcp({ hostname: "127.0.0.1", port: 1, ttl: 300 }), RangeError);
  const l = listenTcp({ hostname: "127.0.0.1", port: 0, kind: "ffi" });
  try {
    assert.throws(() => listenTcp({ hostname: "127.0.0.1", port: l.addr.port, kind: "ffi" }), /EADDRINUSE/);
  } finally {
    l.close();
  }
});

Deno.test("ffi: close() interrupts a pending read and a pending accept", async () => {
  const l = listenTcp({ hostname: "127.0.0.1", port: 0, kind: "ffi" });
  const it = l[Symbol.asyncIterator]();
  const c = await connectTcp({ hostname: "127.0.0.1", port: l.addr.port, localAddress: "127.0.0.1" });
  const s = (await it.next()).value!;
  const pending = s.read(new Uint8Array(16));
  s.close();
  await assert.rejects(pending, Deno.errors.Interrupted);
  c.close();
  const pendingAccept = it.next();
  l.close();
  assert.equal((await pendingAccept).done, true);
});

Deno.test("plain: no password/ttl uses Deno sockets", async () => {
  const l = listenTcp({ hostname: "127.0.0.1", port: 0, kind: "deno" });
  try {
    const it = l[Symbol.asyncIterator]();
    const c = await connectTcp({ hostname: "127.0.0.1", port: l.addr.port });
    const s = (await it.next()).value!;
    assert.ok(!(c instanceof FfiConn));
    await writeAll(c, new Uint8Array([9]));
    assert.deepEqual([...await readN(s, 1)], [9]);
    c.close();
    s.close();
    assert.throws(() => l.setPassword("127.0.0.1", "x"), /--allow-ffi/);
  } finally {
    l.close();
  }
});

Deno.test("ffi: a dual-stack [::] listener holds an IPv4 peer's MD5 key (as ::ffff:a.b.c.d)", async () => {
  const l = listenTcp({ hostname: "::", port: 0, passwords: { "127.0.0.1": "mapped" } });
  try {
    const it = l[Symbol.asyncIterator]();
    const c = await connectTcp({ hostname: "127.0.0.1", port: l.addr.port, password: "mapped" });
    const s = (await it.next()).value!;
    assert.equal(s.remoteAddr.hostname, "127.0.0.1", "mapped address reported as IPv4");
    c.close();
    s.close();
    await assert.rejects(
      connectTcp({
        hostname: "127.0.0.1",
        port: l.addr.port,
        password: "nope",
        signal: AbortSignal.timeout(1000),
      }),
      (e: Error) => e.name === "TimeoutError",
    );
  } finally {
    l.close();
  }
});

Deno.test("ffi: 20 concurrent MD5 connections share the one reactor without mixing data", async () => {
  const l = listenTcp({ hostname: "127.0.0.1", port: 0, passwords: { "127.0.0.1": "many" } });
  try {
    const server = (async () => {
      const tasks: Promise<void>[] = [];
      let n = 0;
      for await (const s of l) {
        // Echo everything back until EOF.
        tasks.push((async () => {
          const buf = new Uint8Array(8192);
          for (;;) {
            const r = await s.read(buf);
            if (r === null) break;
            await writeAll(s, buf.subarray(0, r));
          }
          s.close();
        })());
        if (++n === 20) break;
      }
      await Promise.all(tasks);
    })();
    const size = 256 * 1024;
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const c = await connectTcp({ hostname: "127.0.0.1", port: l.addr.port, password: "many" });
      const data = new Uint8Array(size).map((_, j) => (i * 31 + j) & 0xff);
      const [, echoed] = await Promise.all([writeAll(c, data), readN(c, size)]);
      assert.deepEqual(echoed, data);
      c.close();
    }));
    await server;
  } finally {
    l.close();
  }
});
