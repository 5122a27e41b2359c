"""Shared helpers for cxstream's system tests (real Kafka broker, several processes).

System tests are plain python3 scripts run by ctest (label `system`), not pytest. A test script
imports this module FIRST: on import it re-executes the script with the project's venv
(.venv/bin/python, made by tools/setup.sh) when the current interpreter lacks confluent_kafka.

    import cxtest                                   # before confluent_kafka / fastavro
    from cxtest import Broker, consume_all, wait_for

    def test_something():
        with Broker(partitions=4) as b:             # own broker on free ports, topics created
            b.produce("cx.play", key="c1", value=cxtest.encode(1, {...}))
            recs = consume_all(b.bootstrap, "cx.segment_changes", read_committed=True)
            ...

    if __name__ == "__main__":
        cxtest.main(globals())                      # runs test_*; prints "N passed, N failed"

What it provides:
- Broker: context manager around tools/kafka/broker.sh on a free port pair with a private data
  dir under a temp dir; create_topics()/create_topic(), produce(), stop(), log_tail().
- run_cxstream() (run to completion) and CxProcess / start_cxstream() (background, stop with
  SIGTERM), using the binary from env CXSTREAM.
- consume_all(): read a topic to its end (optionally read_committed) into Record tuples.
- Avro wire format (0x00, 4-byte big-endian id, Avro binary): schemas() (id -> parsed schema
  from schemas/ids.json and the .avsc files), decode(), encode(). timestamp-millis stays an int.
- wait_for(): poll a condition with a timeout instead of sleeping blindly.
"""
import os
import sys


def _ensure_venv():
    """Re-exec the running script under .venv/bin/python if confluent_kafka is not importable."""
    try:
        import confluent_kafka  # noqa: F401
        import fastavro  # noqa: F401
        return
    except ImportError:
        pass
    root = os.environ.get("CX_SOURCE_DIR") or os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", ".."))
    venv_py = os.path.join(root, ".venv", "bin", "python")
    if (os.path.exists(venv_py) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(root, ".venv"))
            and os.environ.get("CX_TEST_REEXEC") != "1" and sys.argv and sys.argv[0]):
        os.environ["CX_TEST_REEXEC"] = "1"
        os.execv(venv_py, [venv_py] + sys.argv)
    sys.stderr.write("cxtest: confluent_kafka/fastavro missing and no usable .venv: "
                     "run bash tools/setup.sh\n")
    sys.exit(1)


_ensure_venv()

import contextlib  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import uuid  # noqa: E402
from collections import namedtuple  # noqa: E402

import fastavro  # noqa: E402
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402

SOURCE_DIR = os.environ.get("CX_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_DIR = os.environ.get("CX_BINARY_DIR") or os.path.join(SOURCE_DIR, "build")
BROKER_SH = os.path.join(SOURCE_DIR, "tools", "kafka", "broker.sh")

sys.path.insert(0, os.path.join(SOURCE_DIR, "tools", "kafka"))
import topics as _topics  # noqa: E402  (tools/kafka/topics.py: the topic layout of DESIGN §4)

topic_specs = _topics.topic_specs
INPUT_TOPICS = _topics.INPUT_TOPICS
OUTPUT_TOPICS = _topics.OUTPUT_TOPICS


def cxstream_binary():
    """Path of the cxstream binary: env CXSTREAM, else build/cxstream."""
    path = os.environ.get("CXSTREAM") or os.path.join(BINARY_DIR, "cxstream")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"cxstream binary not found at {path} (set CXSTREAM)")
    return path


# --- waiting -------------------------------------------------------------------------------------

def wait_for(cond, timeout_s=30.0, interval_s=0.1, what=None):
    """Call cond() until it returns something truthy; return that value.

    A transient Kafka error raised by cond() (a coordinator moving or still loading, a leader
    election) counts as "not yet"; other exceptions propagate. Raises TimeoutError (naming `what`,
    or cond, and the last Kafka error) after timeout_s."""
    from confluent_kafka import KafkaException
    deadline = time.monotonic() + timeout_s
    last_err = None
    while True:
        try:
            v = cond()
        except KafkaException as e:
            v, last_err = None, e
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for "
                               f"{what or getattr(cond, '__name__', 'condition')}"
                               + (f" (last Kafka error: {last_err})" if last_err else ""))
        time.sleep(interval_s)


# --- ports and broker ----------------------------------------------------------------------------

def free_port_pair():
    """A port P such that P and P+1 are both free on 127.0.0.1 (broker and controller)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair found")


class Broker:
    """A private single-node KRaft broker (tools/kafka/broker.sh) for one test.

    Broker(partitions=4, topics=True): on enter, starts on a free port pair with its data under a
    fresh temp dir and, when `topics`, creates every topic of DESIGN §4 with `partitions`
    partitions. On exit it stops the broker and removes the dir (kept when CX_KEEP_BROKER=1, or
    when the test failed and CX_KEEP_FAILED=1)."""

    def __init__(self, partitions=4, topics=True, port=None, data_dir=None):
        self.partitions = partitions
        self.with_topics = topics
        self.port = port or free_port_pair()
        self._own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="cx-broker-")
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.running = False

    def _env(self):
        env = dict(os.environ)
        env["CX_KAFKA_PORT"] = str(self.port)
        env["CX_KAFKA_DIR"] = self.dir
        return env

    def _sh(self, *args, timeout_s=120):
        r = subprocess.run(["bash", BROKER_SH, *args], env=self._env(), capture_output=True,
                           text=True, timeout=timeout_s)
        if r.returncode != 0:
            raise RuntimeError(f"broker.sh {' '.join(args)} failed ({r.returncode}):\n"
                               f"{r.stdout}{r.stderr}")
        return r.stdout

    def start(self):
        self._sh("start")
        self.running = True
        if self.with_topics:
            self.create_topics(self.partitions)
        return self

    def stop(self, clean=None):
        """Stop the broker (SIGTERM, then SIGKILL after 30 s). clean defaults to own temp dir."""
        if clean is None:
            clean = self._own_dir and os.environ.get("CX_KEEP_BROKER") != "1"
        if self.running or os.path.exists(os.path.join(self.dir, "broker.pid")):
            self._sh("stop", *(["--clean"] if clean else []))
        elif clean:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.running = False

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop(clean=False)
            raise

    def __exit__(self, exc_type, exc, tb):
        keep = exc_type is not None and os.environ.get("CX_KEEP_FAILED") == "1"
        if keep:
            sys.stderr.write(f"cxtest: keeping broker dir {self.dir}\n")
        self.stop(clean=False if keep else None)
        return False

    def create_topics(self, partitions=None):
        """Create every topic of DESIGN §4 (existing ones are kept)."""
        specs = topic_specs(partitions or self.partitions)
        _topics.create_topics(self.bootstrap, specs)
        return [s[0] for s in specs]

    def create_topic(self, name, partitions=1, config=None):
        _topics.create_topics(self.bootstrap, [(name, partitions, dict(config or {}))])

    def topic_partitions(self, topic, timeout_s=10.0):
        """Number of partitions of `topic` (0 when it does not exist)."""
        p = Producer({"bootstrap.servers": self.bootstrap})
        md = p.list_topics(topic, timeout=timeout_s)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return 0
        return len(t.partitions)

    def topic_config(self, topic, timeout_s=10.0):
        """{config name: value} of a topic, as the broker reports it."""
        from confluent_kafka.admin import AdminClient, ConfigResource
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        entries = admin.describe_configs([res])[res].result(timeout=timeout_s)
        return {k: v.value for k, v in entries.items()}

    def producer(self, conf=None):
        """A Producer on this broker with the Java client's partitioner (DESIGN §2), idempotent so
        that a retried request keeps its place in the partition; `conf` (librdkafka property
        names) adds to or overrides the defaults."""
        c = {"bootstrap.servers": self.bootstrap, "partitioner": "murmur2_random",
             "linger.ms": 5, "enable.idempotence": True}
        c.update(conf or {})
        return Producer(c)

    def produce(self, topic, records=None, key=None, value=None, timeout_s=30.0, conf=None):
        """Produce and flush. `records`: iterable of (key, value[, headers]) or a single key/value
        via key=/value=. Keys/values: str or bytes. Raises on any failure."""
        if records is None:
            records = [(key, value)]
        p = self.producer(conf)
        errors = []

        def on_delivery(err, _msg):
            if err is not None:
                errors.append(err)
        n = 0
        for rec in records:
            k, v = rec[0], rec[1]
            h = rec[2] if len(rec) > 2 else None
            while True:
                try:
                    p.produce(topic, key=k, value=v, headers=h, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.1)
            n += 1
            if n % 10000 == 0:
                p.poll(0)
        left = p.flush(timeout_s)
        if left or errors:
            raise RuntimeError(f"produce to {topic}: {left} undelivered, errors {errors[:3]}")
        return n

    def log_tail(self, lines=40):
        try:
            with open(os.path.join(self.dir, "broker.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


# --- partitioning -------------------------------------------------------------------------------

def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) & 0x7fffffff."""
    m, r = 0x5bd1e995, 24
    length = len(data)
    h = (0x9747b28c ^ length) & 0xffffffff
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> r
        k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= k
    rest = length % 4
    if rest == 3:
        h ^= data[(length & ~3) + 2] << 16
    if rest >= 2:
        h ^= data[(length & ~3) + 1] << 8
    if rest >= 1:
        h ^= data[length & ~3]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h & 0x7fffffff


def partition_of(key, partitions):
    """Partition of `key` (str or bytes) under the Java client's default partitioner, which
    cxstream's producers use too (librdkafka partitioner=murmur2_random)."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return murmur2(key) % partitions


# --- consuming -----------------------------------------------------------------------------------

Record = namedtuple("Record", "topic partition offset key value headers timestamp")


def consume_all(bootstrap, topic, read_committed=False, timeout_s=30.0, decode_key=True,
                partitions=None):
    """Every record of `topic` (all partitions, or `partitions`) from the beginning to its current
    end, as Records sorted by (partition, offset). With read_committed, the end is the last stable
    offset and aborted records are skipped. Keys are decoded as UTF-8 unless decode_key=False;
    headers as a list of (name, bytes). Uses manual assignment: no group, no committed offsets."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"cxtest-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "auto.offset.reset": "earliest",
    })
    out = []
    try:
        md = c.list_topics(topic, timeout=timeout_s)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            raise RuntimeError(f"topic {topic} not found: {t.error if t else 'no metadata'}")
        parts = sorted(partitions if partitions is not None else t.partitions.keys())
        if not parts:
            return out
        c.assign([TopicPartition(topic, p, 0) for p in parts])  # 0 = from the log start
        pending = set(parts)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"consume_all({topic}): partitions {sorted(pending)} did not "
                                   f"reach their end within {timeout_s:g} s")
            for m in c.consume(num_messages=1000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(m.partition())
                        continue
                    raise KafkaException(err)
                k = m.key()
                if decode_key and k is not None:
                    k = k.decode("utf-8")
                out.append(Record(m.topic(), m.partition(), m.offset(), k, m.value(),
                                  m.headers() or [], m.timestamp()[1]))
                pending.add(m.partition())  # more data after an earlier EOF: wait for a new EOF
    finally:
        c.close()
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


# --- Avro wire format ----------------------------------------------------------------------------

_schemas_cache = {}


def _strip_logical(node):
    """Copy of a schema without logicalType, so fastavro keeps timestamp-millis as int."""
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


def schemas(schemas_dir=None):
    """{schema id: parsed fastavro schema} from schemas/ids.json (id -> .avsc file name)."""
    d = schemas_dir or os.path.join(SOURCE_DIR, "schemas")
    if d in _schemas_cache:
        return _schemas_cache[d]
    with open(os.path.join(d, "ids.json")) as f:
        ids = json.load(f)
    out = {}
    for sid, fname in ids.items():
        if isinstance(fname, dict):
            fname = fname.get("file")
        with open(os.path.join(d, fname)) as f:
            raw = json.load(f)
        out[int(sid)] = fastavro.parse_schema(_strip_logical(copy.deepcopy(raw)), named_schemas={})
    _schemas_cache[d] = out
    return out


def schema_id_of(name, schemas_dir=None):
    """Schema id of a record type by its name ("PlayEvent" or "io.cxstream.PlayEvent")."""
    for sid, s in schemas(schemas_dir).items():
        full = s.get("name", "")
        if full == name or full.rsplit(".", 1)[-1] == name:
            return sid
    raise KeyError(name)


def decode(value, schemas_dir=None):
    """(schema id, record dict) of a wire-format value; raises ValueError on bad framing/id."""
    if value is None or len(value) < 5 or value[0] != 0:
        raise ValueError("not Schema Registry wire format (magic byte 0, 4-byte id)")
    sid = struct.unpack(">I", value[1:5])[0]
    sch = schemas(schemas_dir).get(sid)
    if sch is None:
        raise ValueError(f"unknown schema id {sid}")
    buf = io.BytesIO(value[5:])
    rec = fastavro.schemaless_reader(buf, sch, None)
    if buf.tell() != len(value) - 5:
        raise ValueError(f"{len(value) - 5 - buf.tell()} trailing bytes after schema {sid} record")
    return sid, rec


def encode(schema_id, record, schemas_dir=None):
    """Wire-format bytes of `record` under schema `schema_id` (an int id or a record name)."""
    if isinstance(schema_id, str):
        schema_id = schema_id_of(schema_id, schemas_dir)
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(buf, schemas(schemas_dir)[schema_id], record)
    return buf.getvalue()


# --- cxstream processes --------------------------------------------------------------------------

def run_cxstream(args, timeout_s=300, check=True, env=None, cwd=None, input=None):
    """Run `cxstream ARGS` to completion; returns CompletedProcess (text stdout/stderr).
    With check, a non-zero exit raises RuntimeError carrying the output."""
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([cxstream_binary(), *args], capture_output=True, text=True,
                       timeout=timeout_s, env=e, cwd=cwd, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"cxstream {' '.join(args)} exited {r.returncode}\n"
                           f"--- stdout\n{r.stdout[-4000:]}--- stderr\n{r.stderr[-4000:]}")
    return r


class CxProcess:
    """A background `cxstream` process whose stdout+stderr go to a log file."""

    def __init__(self, args, env=None, cwd=None, log_path=None):
        e = dict(os.environ)
        e.update(env or {})
        self.args = list(args)
        self.log_path = log_path or tempfile.mkstemp(prefix="cxstream-", suffix=".log")[1]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([cxstream_binary(), *self.args], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=e, cwd=cwd)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        self._log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, text, timeout_s=30.0):
        """Wait until `text` appears in the log; raises if the process exits first."""
        def seen():
            if text in self.log():
                return True
            if not self.alive():
                raise RuntimeError(f"cxstream exited {self.proc.returncode} before logging "
                                   f"{text!r}:\n{self.log()[-4000:]}")
            return False
        return wait_for(seen, timeout_s, what=f"log line {text!r}")

    def stop(self, sig=signal.SIGTERM, timeout_s=30.0):
        """Send `sig` (SIGTERM: graceful drain and commit) and wait; SIGKILL after timeout_s.
        Returns the exit code."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL: a crash, for at-least-once tests."""
        return self.stop(signal.SIGKILL, timeout_s=10.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def start_cxstream(args, **kw):
    return CxProcess(args, **kw)


def write_config(path, props):
    """Write a Kafka-style properties file for `cxstream run -c`."""
    with open(path, "w") as f:
        for k, v in props.items():
            f.write(f"{k}={v}\n")
    return path


# --- a tiny runner -------------------------------------------------------------------------------

def main(namespace, argv=None):
    """Run every callable named test_* in `namespace` (a module's globals()) in definition order,
    or only those named in argv; print one line per test and "N passed, N failed"; exit 1 on any
    failure."""
    argv = sys.argv[1:] if argv is None else argv
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    if argv:
        tests = [(n, f) for n, f in tests if n in argv]
    passed = failed = 0
    for name, fn in tests:
        t0 = time.monotonic()
        try:
            fn()
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.1f} s)", flush=True)
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {name} ({time.monotonic() - t0:.1f} s)", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or not tests else 0)


@contextlib.contextmanager
def temp_dir(prefix="cxtest-"):
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        yield d
    finally:
        if os.environ.get("CX_KEEP_FAILED") != "1":
            shutil.rmtree(d, ignore_errors=True)
