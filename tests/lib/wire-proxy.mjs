// A TCP relay on 127.0.0.1 that keeps every byte each way, connection by
// connection, so that tests and scripts/wire-costs.sh can see the traffic as
// it travelled (HTTP headers, WebSocket framing, SSE lines) rather than what
// a client library hands out. Plus the small parsers needed to read it:
// HTTP messages and WebSocket frames.
import { createServer, connect as tcpConnect } from 'node:net';

/**
 * Relays 127.0.0.1:<port> to 127.0.0.1:`targetPort`. Each accepted
 * connection becomes `{ id, up: [Buffer], down: [Buffer], closed, socket }`
 * in `connections` (up: client to server). `bytes()` sums every connection.
 */
export async function startWireProxy(targetPort) {
  const connections = [];
  const server = createServer((client) => {
    const record = { id: connections.length, up: [], down: [], closed: false, client, upstream: null };
    connections.push(record);
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    record.upstream = upstream;
    client.on('data', (chunk) => { record.up.push(chunk); upstream.write(chunk); });
    upstream.on('data', (chunk) => { record.down.push(chunk); client.write(chunk); });
    const finish = () => {
      record.closed = true;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', finish);
    upstream.on('close', finish);
    // A reset on either side just ends the pair; the test reads what came.
    client.on('error', finish);
    upstream.on('error', finish);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections,
    /** Total bytes each way over every connection so far. */
    bytes() {
      let up = 0;
      let down = 0;
      for (const record of connections) {
        up += record.up.reduce((sum, chunk) => sum + chunk.length, 0);
        down += record.down.reduce((sum, chunk) => sum + chunk.length, 0);
      }
      return { up, down };
    },
    /** Cuts every open connection, as a network drop would. */
    cutAll() {
      for (const record of connections) if (!record.closed) record.client.destroy();
    },
    close() {
      for (const record of connections) { record.client.destroy(); record.upstream?.destroy(); }
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export const joined = (chunks) => Buffer.concat(chunks);

/**
 * Splits a byte stream into HTTP messages (head + body). A body is read by
 * Content-Length, by chunked encoding, or, for a message with neither (an
 * upgraded or streamed response), is everything that follows.
 * Returns [{ head: string, headers: Map, startLine, bodyBytes: Buffer, size }].
 */
export function httpMessages(buffer) {
  const messages = [];
  let offset = 0;
  while (offset < buffer.length) {
    const end = buffer.indexOf('\r\n\r\n', offset);
    if (end < 0) break;
    const head = buffer.subarray(offset, end).toString('latin1');
    const [startLine, ...lines] = head.split('\r\n');
    const headers = new Map(lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    }));
    let bodyStart = end + 4;
    let bodyBytes;
    let next;
    if (headers.has('content-length')) {
      const length = Number(headers.get('content-length'));
      bodyBytes = buffer.subarray(bodyStart, bodyStart + length);
      next = bodyStart + length;
    } else if ((headers.get('transfer-encoding') ?? '').includes('chunked')) {
      const parts = [];
      for (;;) {
        const lineEnd = buffer.indexOf('\r\n', bodyStart);
        if (lineEnd < 0) { next = buffer.length; break; }
        const length = parseInt(buffer.subarray(bodyStart, lineEnd).toString('latin1'), 16);
        parts.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + length));
        bodyStart = lineEnd + 2 + length + 2;
        if (length === 0) { next = bodyStart; break; }
      }
      bodyBytes = Buffer.concat(parts);
    } else if (/^(GET|HEAD|DELETE|OPTIONS) /.test(startLine) || / 101 /.test(startLine) || / 204 /.test(startLine)) {
      bodyBytes = Buffer.alloc(0);
      next = bodyStart;
    } else {
      bodyBytes = buffer.subarray(bodyStart);
      next = buffer.length;
    }
    messages.push({ head, startLine, headers, bodyBytes, size: next - offset });
    offset = next;
  }
  return { messages, rest: buffer.subarray(offset) };
}

/** Bytes of the HTTP head (start line, headers, blank line) at the start of `buffer`. */
export function headLength(buffer) {
  const end = buffer.indexOf('\r\n\r\n');
  return end < 0 ? buffer.length : end + 4;
}

/**
 * WebSocket frames (RFC 6455 §5.2) in `buffer`, unmasked:
 * [{ opcode, fin, masked, payload: Buffer, text, size }]; a torn last frame is left out.
 */
export function webSocketFrames(buffer) {
  const frames = [];
  let offset = 0;
  while (offset + 2 <= buffer.length) {
    const first = buffer[offset];
    const second = buffer[offset + 1];
    const masked = (second & 0x80) !== 0;
    let length = second & 0x7f;
    let cursor = offset + 2;
    if (length === 126) {
      if (cursor + 2 > buffer.length) break;
      length = buffer.readUInt16BE(cursor);
      cursor += 2;
    } else if (length === 127) {
      if (cursor + 8 > buffer.length) break;
      length = Number(buffer.readBigUInt64BE(cursor));
      cursor += 8;
    }
    let mask = null;
    if (masked) {
      if (cursor + 4 > buffer.length) break;
      mask = buffer.subarray(cursor, cursor + 4);
      cursor += 4;
    }
    if (cursor + length > buffer.length) break;
    const payload = Buffer.from(buffer.subarray(cursor, cursor + length));
    if (mask) for (let i = 0; i < payload.length; i += 1) payload[i] ^= mask[i % 4];
    const size = cursor + length - offset;
    frames.push({ opcode: first & 0x0f, fin: (first & 0x80) !== 0, masked, payload, text: payload.toString('utf8'), size });
    offset += size;
  }
  return frames;
}

/** The frames of an upgraded connection, after its HTTP head, each way. */
export function upgradedFrames(record) {
  const up = joined(record.up);
  const down = joined(record.down);
  return {
    up: webSocketFrames(up.subarray(headLength(up))),
    down: webSocketFrames(down.subarray(headLength(down))),
    upHead: up.subarray(0, headLength(up)).toString('latin1'),
    downHead: down.subarray(0, headLength(down)).toString('latin1'),
  };
}
