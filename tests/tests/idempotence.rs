//! The idempotent producer: a batch the broker appended but whose acknowledgement was lost is
//! retried by the client and deduplicated by the broker; sequence gaps are refused.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, ensure, Result};
use brook_tests::*;
use bytes::Bytes;
use kafka_protocol::messages::ProduceResponse;
use kafka_protocol::protocol::{Decodable, HeaderVersion};
use kafka_protocol::records::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy did when it cut a connection.
#[derive(Debug, Clone)]
struct Cut {
    produce_number: usize,
    /// Error codes of the partitions in the broker's (swallowed) Produce response.
    errors: Vec<i16>,
}

#[derive(Default)]
struct ProxyState {
    produce_requests: usize,
    cut_at: Vec<usize>,
    cuts: Vec<Cut>,
}

/// A TCP proxy in front of brook that forwards Kafka frames both ways, except that for the
/// Produce requests numbered in `cut_at` (1-based, counted over all connections) it forwards the
/// request, waits for the broker's response, swallows it and closes both sides.
struct CuttingProxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

async fn read_frame(r: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.ok()?;
    let len = i32::from_be_bytes(len);
    if !(0..=256 * 1024 * 1024).contains(&len) {
        return None;
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).await.ok()?;
    Some(body)
}

async fn write_frame(w: &mut OwnedWriteHalf, body: &[u8]) -> Option<()> {
    w.write_all(&framed(body)).await.ok()
}

impl CuttingProxy {
    async fn bind(cut_at: Vec<usize>) -> Result<(CuttingProxy, TcpListener)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let state = Arc::new(Mutex::new(ProxyState {
            cut_at,
            ..ProxyState::default()
        }));
        Ok((
            CuttingProxy {
                addr: listener.local_addr()?,
                state,
            },
            listener,
        ))
    }

    fn serve(&self, listener: TcpListener, upstream: SocketAddr) {
        let state = self.state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                tokio::spawn(Self::pipe(client, server, state.clone()));
            }
        });
    }

    async fn pipe(client: TcpStream, server: TcpStream, state: Arc<Mutex<ProxyState>>) {
        let (mut client_r, mut client_w) = client.into_split();
        let (mut server_r, mut server_w) = server.into_split();
        // (correlation id, api version) of the Produce request whose response is swallowed.
        let doomed: Arc<Mutex<Option<(i32, i16, usize)>>> = Arc::new(Mutex::new(None));

        let requests = {
            let doomed = doomed.clone();
            let state = state.clone();
            tokio::spawn(async move {
                while let Some(frame) = read_frame(&mut client_r).await {
                    if frame_api_key(&frame) == Some(PRODUCE_KEY) && frame.len() >= 8 {
                        let mut s = state.lock().expect("proxy state");
                        s.produce_requests += 1;
                        let n = s.produce_requests;
                        let mut d = doomed.lock().expect("doomed");
                        if s.cut_at.contains(&n) && d.is_none() {
                            let version = i16::from_be_bytes([frame[2], frame[3]]);
                            let correlation =
                                i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                            *d = Some((correlation, version, n));
                        }
                    }
                    if write_frame(&mut server_w, &frame).await.is_none() {
                        break;
                    }
                }
            })
        };

        while let Some(frame) = read_frame(&mut server_r).await {
            if frame.len() >= 4 {
                let correlation = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                let target = *doomed.lock().expect("doomed");
                if let Some((c, version, n)) = target {
                    if c == correlation {
                        let errors =
                            decode_produce_errors(&frame, version).unwrap_or_else(|_| vec![-999]);
                        state.lock().expect("proxy state").cuts.push(Cut {
                            produce_number: n,
                            errors,
                        });
                        break;
                    }
                }
            }
            if write_frame(&mut client_w, &frame).await.is_none() {
                break;
            }
        }
        // Dropping every half closes both connections.
        requests.abort();
    }

    fn cuts(&self) -> Vec<Cut> {
        self.state.lock().expect("proxy state").cuts.clone()
    }
}

fn decode_produce_errors(frame: &[u8], version: i16) -> Result<Vec<i16>> {
    let mut buf = Bytes::copy_from_slice(frame);
    kafka_protocol::messages::ResponseHeader::decode(
        &mut buf,
        ProduceResponse::header_version(version),
    )?;
    let response = ProduceResponse::decode(&mut buf, version)?;
    Ok(response
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
        .collect())
}

/// librdkafka with enable.idempotence=true loses the acknowledgement of three Produce requests
/// the broker did append (the proxy closes the connection instead of returning the response);
/// it retries those batches and everything in flight behind them, and the broker must
/// deduplicate: every message is in the log exactly once, in order, at the offset its delivery
/// report gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_acknowledgements_do_not_duplicate_idempotent_writes() -> Result<()> {
    const MESSAGES: usize = 3_000;
    const PARTITIONS: i32 = 2;
    let (proxy, listener) = CuttingProxy::bind(vec![3, 10, 20]).await?;
    // Clients only ever learn the proxy's address (bootstrap and Metadata both name it).
    let broker = Broker::start_with(|o| {
        o.listen_port(free_port())
            .advertise(&proxy.addr.to_string());
    });
    assert_eq!(
        broker.addr(),
        proxy.addr,
        "the ready line names the advertised address"
    );
    proxy.serve(listener, broker.listen_addr());
    create_topic(&broker, "idem", PARTITIONS, &[]).await?;

    let producer = producer_for(
        &proxy.addr.to_string(),
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("batch.num.messages", "50"),
            ("max.in.flight.requests.per.connection", "5"),
        ],
    );
    let messages: Vec<Msg> = (0..MESSAGES)
        .map(|i| {
            Msg::value(format!("idem-{i:06}"))
                .key(format!("k{i}"))
                .partition((i % PARTITIONS as usize) as i32)
        })
        .collect();
    let delivered = produce_all(&producer, "idem", &messages).await?;

    let cuts = proxy.cuts();
    assert_eq!(
        cuts.len(),
        3,
        "the proxy should have cut three connections: {cuts:?}"
    );
    for cut in &cuts {
        assert!(
            cut.errors.iter().all(|e| *e == codes::NONE),
            "the broker did not accept Produce #{} (errors {:?}), so its retry is not a duplicate",
            cut.produce_number,
            cut.errors
        );
    }

    let received = consume_all(&broker, "idem")?;
    for p in 0..PARTITIONS {
        let got: Vec<(i64, String)> = received
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        let want: Vec<(i64, String)> = (0..MESSAGES)
            .filter(|i| (i % PARTITIONS as usize) as i32 == p)
            .enumerate()
            .map(|(o, i)| (o as i64, format!("idem-{i:06}")))
            .collect();
        if got != want {
            let dupes = got.len() as i64 - want.len() as i64;
            let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "partition {p}: {} messages in the log, {} produced ({dupes:+}); first difference at index {first_diff:?}: got {:?}, want {:?}",
                got.len(),
                want.len(),
                first_diff.and_then(|i| got.get(i)),
                first_diff.and_then(|i| want.get(i)),
            );
        }
    }
    for (i, d) in delivered.iter().enumerate() {
        assert_eq!(
            (d.partition, d.offset),
            (
                (i % PARTITIONS as usize) as i32,
                (i / PARTITIONS as usize) as i64
            ),
            "delivery report of message {i}"
        );
    }
    Ok(())
}

fn values(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect()
}

fn batch(values: &[Vec<u8>], producer: ProducerIdentity, base_sequence: i32) -> Result<Bytes> {
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    record_batch(
        &refs,
        2,
        producer,
        base_sequence,
        1_700_000_000_000,
        Compression::None,
    )
}

fn produce_one(conn: &mut RawConn, topic: &str, batch: &Bytes) -> Result<(i16, i64)> {
    let r = produce_raw(conn, topic, &[(0, batch.clone())])?;
    let p = r
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no partition response"))?;
    Ok((p.error_code, p.base_offset))
}

fn latest(conn: &mut RawConn, topic: &str) -> Result<i64> {
    let (error, offset, _) = list_offset(conn, topic, 0, -1)?;
    ensure!(error == 0, "ListOffsets latest: error {error}");
    Ok(offset)
}

/// Raw protocol: InitProducerId, then Produce of the same batch twice gives the same base
/// offset and no second copy (also for an older batch within the last five); a sequence gap is
/// OUT_OF_ORDER_SEQUENCE_NUMBER and leaves the log and the sequence untouched; another
/// producer id has its own sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_batches_are_deduplicated_and_gaps_refused() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "seq", 1, &[]).await?;
    let mut conn = RawConn::connect(broker.addr())?;
    let producer = init_producer_id(&mut conn)?;
    assert!(
        producer.id >= 0 && producer.epoch >= 0,
        "InitProducerId gave {producer:?}"
    );

    let b0 = batch(&values("b0", 3), producer, 0)?;
    let b1 = batch(&values("b1", 3), producer, 3)?;
    let b2 = batch(&values("b2", 3), producer, 6)?;
    assert_eq!(
        produce_one(&mut conn, "seq", &b0)?,
        (codes::NONE, 0),
        "first send of batch seq 0"
    );
    assert_eq!(
        produce_one(&mut conn, "seq", &b0)?,
        (codes::NONE, 0),
        "re-send of batch seq 0: Kafka answers NONE with the original base offset"
    );
    assert_eq!(latest(&mut conn, "seq")?, 3, "the duplicate was appended");
    assert_eq!(
        produce_one(&mut conn, "seq", &b1)?,
        (codes::NONE, 3),
        "batch seq 3"
    );
    assert_eq!(
        produce_one(&mut conn, "seq", &b2)?,
        (codes::NONE, 6),
        "batch seq 6"
    );
    assert_eq!(
        produce_one(&mut conn, "seq", &b1)?,
        (codes::NONE, 3),
        "re-send of the older batch seq 3"
    );
    assert_eq!(latest(&mut conn, "seq")?, 9);

    let gap = batch(&values("gap", 2), producer, 12)?;
    let (error, _) = produce_one(&mut conn, "seq", &gap)?;
    assert_eq!(
        error,
        codes::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "batch seq 12 when seq 9 is expected"
    );
    assert_eq!(
        latest(&mut conn, "seq")?,
        9,
        "the out-of-order batch was appended"
    );

    let b3 = batch(&values("b3", 2), producer, 9)?;
    assert_eq!(
        produce_one(&mut conn, "seq", &b3)?,
        (codes::NONE, 9),
        "batch seq 9 after the refused gap"
    );

    let other = init_producer_id(&mut conn)?;
    assert_ne!(
        other.id, producer.id,
        "a second InitProducerId must give a new producer id"
    );
    let o0 = batch(&values("other", 2), other, 0)?;
    assert_eq!(
        produce_one(&mut conn, "seq", &o0)?,
        (codes::NONE, 11),
        "another producer's seq 0"
    );

    let records = fetch_all_raw(&mut conn, "seq", 0, 0)?;
    let got: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = ["b0", "b1", "b2"]
        .iter()
        .flat_map(|b| (0..3).map(move |i| format!("{b}-{i}")))
        .chain((0..2).map(|i| format!("b3-{i}")))
        .chain((0..2).map(|i| format!("other-{i}")))
        .enumerate()
        .map(|(o, v)| (o as i64, v))
        .collect();
    assert_eq!(got, want, "log contents");
    Ok(())
}
