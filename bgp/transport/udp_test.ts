/** FFI UDP over loopback (127.0.0.1, ::1): TTL set on send and read back on receipt. */
import assert from "node:assert/strict";
import { UdpSocket } from "./udp.ts";

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test(`udp ${host}: datagrams carry the TTL we set and recvmsg reports it`, async () => {
    const rx = UdpSocket.bind({ hostname: host, port: 0, recvTtl: true, v6Only: true });
    const tx255 = UdpSocket.bind({ hostname: host, port: 0, ttl: 255 });
    const tx7 = UdpSocket.bind({ hostname: host, port: 0, ttl: 7 });
    try {
      assert.ok(tx255.sendTo(new Uint8Array([1, 2, 3]), host, rx.addr.port));
      const a = await rx.recv();
      assert.deepEqual([...a.data], [1, 2, 3]);
      assert.equal(a.ttl, 255);
      assert.equal(a.port, tx255.addr.port);
      assert.equal(a.hostname, host);
      tx7.sendTo(new Uint8Array([4]), host, rx.addr.port);
      assert.equal((await rx.recv()).ttl, 7);
      const pending = rx.recv();
      rx.close();
      await assert.rejects(pending, Deno.errors.Interrupted);
    } finally {
      rx.close();
      tx255.close();
      tx7.close();
    }
  });
}
