//! What the standby relies on from NATS JetStream, checked against the `nats-server` the test
//! command installs (Debian's 2.9): a stream that refuses a publish naming the wrong last
//! sequence, de-duplicates a resent message id, is read back in order from any sequence, and
//! keeps taking writes when one of three nodes dies; a key-value bucket whose key can be created
//! by one holder only, renewed only by its revision, and is free again once it is not renewed.

use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    context::PublishErrorKind,
    kv::{CreateErrorKind, UpdateErrorKind},
    message::PublishMessage,
    stream,
};
use futures::StreamExt;
use hongfan_tests::nats::NatsCluster;
use hongfan_tests::within;

async fn publish(
    js: &jetstream::Context,
    payload: &str,
    id: &str,
    last: u64,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    js.send_publish(
        "log",
        PublishMessage::build()
            .payload(payload.to_string().into())
            .message_id(id)
            .expected_last_sequence(last),
    )
    .await?
    .await
}

/// Retries `f` until it succeeds or `deadline` passes: a new cluster's leaders are elected in
/// the first seconds, and a request made before may fail.
async fn retried<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    deadline: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() > deadline => panic!("{what}: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn jetstream_does_what_the_standby_relies_on() {
    let mut cluster = NatsCluster::start().await;
    let client = cluster.client().await;
    let js = jetstream::new(client);
    let mut log = retried("create the stream", Duration::from_secs(30), || {
        js.get_or_create_stream(stream::Config {
            name: "LOG".into(),
            subjects: vec!["log".into()],
            num_replicas: 3,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
    })
    .await;

    // A fenced append: the first names 0 as the last sequence, the next its predecessor.
    let first = publish(&js, "one", "r1-1", 0).await.expect("first publish");
    assert_eq!(first.sequence, 1);
    let second = publish(&js, "two", "r1-2", 1).await.expect("second publish");
    assert_eq!(second.sequence, 2);
    // A writer that thinks the tail is still 1 is refused.
    let stale = publish(&js, "stale", "r2-2", 1).await.expect_err("stale writer refused");
    assert_eq!(stale.kind(), PublishErrorKind::WrongLastSequence);
    // So is one that thinks the stream is still empty.
    let fresh =
        publish(&js, "fresh", "r3-1", 0).await.expect_err("a writer of an empty stream refused");
    assert_eq!(fresh.kind(), PublishErrorKind::WrongLastSequence);
    // A resent message (the same id) is acknowledged as a duplicate, not stored twice.
    let again = publish(&js, "two", "r1-2", 1).await.expect("resend");
    assert!(again.duplicate);
    assert_eq!(again.sequence, 2);

    // Read back from sequence 2, in order.
    let mut messages = log
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: 2 },
            filter_subject: "log".into(),
            ..Default::default()
        })
        .await
        .expect("consumer")
        .messages()
        .await
        .expect("messages");
    let message = within("message 2", messages.next()).await.expect("message").expect("ok");
    assert_eq!(&message.payload[..], b"two");
    assert_eq!(message.info().expect("info").stream_sequence, 2);
    let raw = log.get_raw_message(1).await.expect("message 1");
    assert_eq!(&raw.payload[..], b"one");

    // The lease: a bucket whose entries expire `max_age` after they were last written.
    let ttl = Duration::from_secs(2);
    // The bucket's stream is made by hand, as `create_key_value` would make it: that function
    // first reads the account's info, whose answer from a 2.9 server async-nats cannot parse.
    retried("create the bucket", Duration::from_secs(30), || {
        js.get_or_create_stream(stream::Config {
            name: "KV_lease".into(),
            subjects: vec!["$KV.lease.>".into()],
            max_messages_per_subject: 1,
            max_age: ttl,
            num_replicas: 3,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
    })
    .await;
    let kv = js.get_key_value("lease").await.expect("the bucket");
    let held = kv.create("leader", "a".into()).await.expect("a takes the lease");
    let taken = kv.create("leader", "b".into()).await.expect_err("b may not take it");
    assert_eq!(taken.kind(), CreateErrorKind::AlreadyExists);
    let renewed = kv.update("leader", "a".into(), held).await.expect("a renews");
    assert!(renewed > held);
    let stale = kv.update("leader", "b".into(), held).await.expect_err("b renews nothing");
    assert_eq!(stale.kind(), UpdateErrorKind::WrongLastRevision);
    // Not renewed, it is free again after `max_age`.
    let renewed_at = Instant::now();
    let by_b = retried("b takes the expired lease", Duration::from_secs(10), || {
        kv.create("leader", "b".into())
    })
    .await;
    assert!(renewed_at.elapsed() >= ttl - Duration::from_millis(200), "expired too early");
    assert!(by_b > renewed);
    eprintln!("lease free {:?} after its last renewal (max_age {ttl:?})", renewed_at.elapsed());

    // One of three nodes dies: appends continue once the stream has a leader again.
    let stream_leader =
        log.info().await.expect("stream info").cluster.clone().and_then(|c| c.leader);
    let victim = (0..3).find(|i| stream_leader.as_deref() == Some(&format!("n{}", i + 1)));
    let victim = victim.expect("the stream has a leader among n1..n3");
    cluster.kill(victim);
    let killed = Instant::now();
    let third = retried("publish after a node died", Duration::from_secs(30), || {
        publish(&js, "three", "r1-3", 2)
    })
    .await;
    assert_eq!(third.sequence, 3);
    eprintln!("stream leader n{} killed: next append after {:?}", victim + 1, killed.elapsed());
    cluster.restart(victim).await;
    let fourth = publish(&js, "four", "r1-4", 3).await.expect("publish with all three again");
    assert_eq!(fourth.sequence, 4);
}
