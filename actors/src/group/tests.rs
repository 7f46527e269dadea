//! Unit tests of [`GroupActor`] against an in-memory [`GroupStore`]: Kafka's classic group
//! protocol (join barrier, sync, heartbeats, leaves, static members, offsets, failover) with
//! short real timers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures::future::{self, BoxFuture, FutureExt};
use tokio::sync::{oneshot, Semaphore};

use crate::group::codes;
use crate::group::messages::*;
use crate::group::{
    ask, CoordinatorConfig, GroupActor, GroupStore, LoadedGroup, OffsetToCommit, StoreResult,
    StoredGroup, StoredMember,
};

const GROUP: &str = "g";

// ---- an in-memory store ---------------------------------------------------------------------

/// One group's committed offsets by (topic, partition).
type Offsets = BTreeMap<(String, i32), OffsetToCommit>;

#[derive(Default)]
struct MemStore {
    groups: Mutex<HashMap<String, StoredGroup>>,
    offsets: Mutex<HashMap<String, Offsets>>,
    /// Every write (store, commit, delete, delete_offsets) fails with this code when set.
    fail_writes: Mutex<Option<i16>>,
    /// `store` answers only once this semaphore gives a permit, when set.
    hold_stores: Mutex<Option<Arc<Semaphore>>>,
    /// `load` fails with this code when set.
    fail_load: Mutex<Option<i16>>,
    /// The placement epoch loads report; `coordinates` is true only for it.
    epoch: AtomicU64,
    loads: AtomicUsize,
    stores: AtomicUsize,
    commits: AtomicUsize,
    deletes: AtomicUsize,
}

impl MemStore {
    fn new() -> Arc<Self> {
        Arc::new(MemStore::default())
    }

    fn holding(group: &str, record: StoredGroup) -> Arc<Self> {
        let store = MemStore::new();
        store
            .groups
            .lock()
            .unwrap()
            .insert(group.to_owned(), record);
        store
    }

    fn fail_writes(&self, code: Option<i16>) {
        *self.fail_writes.lock().unwrap() = code;
    }

    /// Hold every later `store` answer until the returned semaphore gets permits.
    fn hold_stores(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.hold_stores.lock().unwrap() = Some(gate.clone());
        gate
    }

    fn write_error(&self) -> Option<i16> {
        *self.fail_writes.lock().unwrap()
    }

    fn group(&self, group: &str) -> Option<StoredGroup> {
        self.groups.lock().unwrap().get(group).cloned()
    }

    fn offsets(&self, group: &str) -> Vec<OffsetToCommit> {
        self.offsets
            .lock()
            .unwrap()
            .get(group)
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default()
    }

    fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

impl GroupStore for MemStore {
    fn load(&self, group: &str) -> BoxFuture<'static, StoreResult<LoadedGroup>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let result = match *self.fail_load.lock().unwrap() {
            Some(error) => Err(error),
            None => Ok(LoadedGroup {
                stored: self.group(group),
                epoch: self.epoch.load(Ordering::SeqCst),
            }),
        };
        future::ready(result).boxed()
    }

    fn coordinates(&self, _group: &str, epoch: u64) -> bool {
        epoch == self.epoch.load(Ordering::SeqCst)
    }

    fn store(
        &self,
        group: &str,
        _epoch: u64,
        record: StoredGroup,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.stores.fetch_add(1, Ordering::SeqCst);
        let result = match self.write_error() {
            Some(error) => Err(error),
            None => {
                self.groups.lock().unwrap().insert(group.to_owned(), record);
                Ok(())
            }
        };
        let gate = self.hold_stores.lock().unwrap().clone();
        async move {
            if let Some(gate) = gate {
                let _permit = gate.acquire().await;
            }
            result
        }
        .boxed()
    }

    fn commit(
        &self,
        group: &str,
        _epoch: u64,
        offsets: Vec<OffsetToCommit>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        let result = match self.write_error() {
            Some(error) => Err(error),
            None => {
                let mut all = self.offsets.lock().unwrap();
                let mine = all.entry(group.to_owned()).or_default();
                for o in offsets {
                    mine.insert((o.topic.clone(), o.partition), o);
                }
                Ok(())
            }
        };
        future::ready(result).boxed()
    }

    fn delete(&self, group: &str, _epoch: u64) -> BoxFuture<'static, StoreResult<()>> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        let result = match self.write_error() {
            Some(error) => Err(error),
            None => {
                self.groups.lock().unwrap().remove(group);
                self.offsets.lock().unwrap().remove(group);
                Ok(())
            }
        };
        future::ready(result).boxed()
    }

    fn delete_offsets(
        &self,
        group: &str,
        _epoch: u64,
        partitions: Vec<(String, i32)>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let result = match self.write_error() {
            Some(error) => Err(error),
            None => {
                if let Some(mine) = self.offsets.lock().unwrap().get_mut(group) {
                    for p in partitions {
                        mine.remove(&p);
                    }
                }
                Ok(())
            }
        };
        future::ready(result).boxed()
    }
}

// ---- talking to the actor -------------------------------------------------------------------

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        min_session_timeout_ms: 10,
        max_session_timeout_ms: 100_000,
        initial_rebalance_delay_ms: 0,
    }
}

fn start_with(group: &str, store: &Arc<MemStore>, config: CoordinatorConfig) -> Addr<GroupActor> {
    let store: Arc<dyn GroupStore> = store.clone();
    GroupActor::new(group.to_owned(), store, config).start()
}

fn start_group(group: &str, store: &Arc<MemStore>) -> Addr<GroupActor> {
    start_with(group, store, config())
}

fn start(store: &Arc<MemStore>) -> Addr<GroupActor> {
    start_group(GROUP, store)
}

/// Waits for an answer, failing the test rather than hanging it.
async fn recv<T>(rx: oneshot::Receiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(3), rx)
        .await
        .expect("no answer within 3s")
        .expect("the actor dropped the request")
}

/// Whether an answer is still outstanding.
fn outstanding<T>(rx: &mut oneshot::Receiver<T>) -> bool {
    matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))
}

/// `ask` with a deadline: None if the actor is gone.
async fn call<M, T>(
    addr: &Addr<GroupActor>,
    make: impl FnOnce(oneshot::Sender<T>) -> M,
) -> Option<T>
where
    M: Message<Result = ()> + Send + 'static,
    GroupActor: Handler<M>,
    T: Send + 'static,
{
    tokio::time::timeout(Duration::from_secs(3), ask(addr, make))
        .await
        .expect("no answer within 3s")
}

fn metadata(client: &str, protocol: &str) -> Bytes {
    Bytes::from(format!("{client}/{protocol}"))
}

fn assignment_for(member: &str) -> Bytes {
    Bytes::from(format!("assignment of {member}"))
}

/// A JoinGroup request, built up step by step.
#[derive(Clone)]
struct Join {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<Protocol>,
    require_known_member_id: bool,
}

impl Join {
    /// A consumer of client id `client` supporting "range", with long timeouts.
    fn new(client: &str) -> Self {
        Join {
            member_id: String::new(),
            instance_id: None,
            client_id: client.to_owned(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 5_000,
            protocol_type: "consumer".to_owned(),
            protocols: Vec::new(),
            require_known_member_id: false,
        }
        .protocols(&["range"])
    }

    fn protocols(mut self, names: &[&str]) -> Self {
        self.protocols = names
            .iter()
            .map(|name| Protocol {
                name: (*name).to_owned(),
                metadata: metadata(&self.client_id, name),
            })
            .collect();
        self
    }

    fn id(mut self, id: &str) -> Self {
        self.member_id = id.to_owned();
        self
    }

    fn instance(mut self, instance: &str) -> Self {
        self.instance_id = Some(instance.to_owned());
        self
    }

    fn session(mut self, ms: i32) -> Self {
        self.session_timeout_ms = ms;
        self
    }

    fn rebalance(mut self, ms: i32) -> Self {
        self.rebalance_timeout_ms = ms;
        self
    }

    fn protocol_type(mut self, protocol_type: &str) -> Self {
        self.protocol_type = protocol_type.to_owned();
        self
    }

    fn requiring_known_id(mut self) -> Self {
        self.require_known_member_id = true;
        self
    }

    fn send(&self, addr: &Addr<GroupActor>) -> oneshot::Receiver<JoinResult> {
        let (reply, rx) = oneshot::channel();
        addr.do_send(JoinGroup {
            member_id: self.member_id.clone(),
            instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: "/127.0.0.1".to_owned(),
            session_timeout_ms: self.session_timeout_ms,
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            protocol_type: self.protocol_type.clone(),
            protocols: self.protocols.clone(),
            require_known_member_id: self.require_known_member_id,
            reply,
        });
        rx
    }

    async fn ask(&self, addr: &Addr<GroupActor>) -> JoinResult {
        recv(self.send(addr)).await
    }
}

fn send_sync(
    addr: &Addr<GroupActor>,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> oneshot::Receiver<SyncResult> {
    let (reply, rx) = oneshot::channel();
    addr.do_send(SyncGroup {
        member_id: member.to_owned(),
        instance_id: None,
        generation,
        protocol_type: Some("consumer".to_owned()),
        protocol: None,
        assignments,
        reply,
    });
    rx
}

async fn heartbeat_as(
    addr: &Addr<GroupActor>,
    member: &str,
    instance: Option<&str>,
    generation: i32,
) -> i16 {
    call(addr, |reply| Heartbeat {
        member_id: member.to_owned(),
        instance_id: instance.map(str::to_owned),
        generation,
        reply,
    })
    .await
    .expect("the group actor stopped")
}

async fn heartbeat(addr: &Addr<GroupActor>, member: &str, generation: i32) -> i16 {
    heartbeat_as(addr, member, None, generation).await
}

async fn describe(addr: &Addr<GroupActor>) -> GroupDescription {
    call(addr, |reply| DescribeGroup { reply })
        .await
        .expect("the group actor stopped")
}

fn member_ids(description: &GroupDescription) -> Vec<String> {
    description
        .members
        .iter()
        .map(|m| m.member_id.clone())
        .collect()
}

async fn leave(addr: &Addr<GroupActor>, members: &[&str]) -> LeaveResult {
    let members = members
        .iter()
        .map(|id| LeavingMember {
            member_id: (*id).to_owned(),
            instance_id: None,
        })
        .collect();
    call(addr, |reply| LeaveGroup { members, reply })
        .await
        .expect("the group actor stopped")
}

fn offset(topic: &str, partition: i32, offset: i64) -> OffsetToCommit {
    OffsetToCommit {
        topic: topic.to_owned(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: String::new(),
    }
}

async fn commit(
    addr: &Addr<GroupActor>,
    member: &str,
    generation: i32,
    offsets: Vec<OffsetToCommit>,
) -> i16 {
    call(addr, |reply| CommitOffsets {
        member_id: member.to_owned(),
        instance_id: None,
        generation,
        offsets,
        reply,
    })
    .await
    .expect("the group actor stopped")
}

/// Dynamic members first get their ids with MEMBER_ID_REQUIRED (static members need none), then
/// all join: the pending ids hold the barrier, so they all land in one generation. A static
/// member must come first in `joins` (it joins without a pending id of its own).
async fn join_all(addr: &Addr<GroupActor>, joins: &[Join]) -> Vec<JoinResult> {
    let mut ready = Vec::new();
    for join in joins {
        if join.instance_id.is_some() {
            ready.push(join.clone());
            continue;
        }
        let first = join.clone().requiring_known_id().ask(addr).await;
        assert_eq!(first.error, codes::MEMBER_ID_REQUIRED);
        assert!(first.member_id.starts_with(&format!("{}-", join.client_id)));
        ready.push(join.clone().requiring_known_id().id(&first.member_id));
    }
    let waiting: Vec<_> = ready.iter().map(|j| j.send(addr)).collect();
    let mut joined = Vec::new();
    for rx in waiting {
        let result = recv(rx).await;
        assert_eq!(result.error, codes::NONE, "{result:?}");
        joined.push(result);
    }
    joined
}

fn leader_of(joined: &[JoinResult]) -> &JoinResult {
    joined
        .iter()
        .find(|j| j.member_id == j.leader)
        .expect("no member is the leader")
}

/// Every member syncs (followers first), the leader giving each member `assignment_for` it:
/// the group turns Stable.
async fn sync_all(addr: &Addr<GroupActor>, joined: &[JoinResult]) {
    let leader = leader_of(joined);
    let generation = leader.generation;
    let assignments: Vec<(String, Bytes)> = joined
        .iter()
        .map(|j| (j.member_id.clone(), assignment_for(&j.member_id)))
        .collect();
    let mut waiting = Vec::new();
    for j in joined.iter().filter(|j| j.member_id != leader.member_id) {
        waiting.push((
            j.member_id.clone(),
            send_sync(addr, &j.member_id, generation, vec![]),
        ));
    }
    waiting.push((
        leader.member_id.clone(),
        send_sync(addr, &leader.member_id, generation, assignments),
    ));
    for (member, rx) in waiting {
        let result = recv(rx).await;
        assert_eq!(result.error, codes::NONE, "{result:?}");
        assert_eq!(result.assignment, assignment_for(&member));
    }
}

/// A Stable group of `joins` at generation 1.
async fn stable_group(addr: &Addr<GroupActor>, joins: &[Join]) -> Vec<JoinResult> {
    let joined = join_all(addr, joins).await;
    sync_all(addr, &joined).await;
    assert_eq!(describe(addr).await.state, "Stable");
    joined
}

fn other<'a>(joined: &'a [JoinResult], not: &str) -> &'a JoinResult {
    joined
        .iter()
        .find(|j| j.member_id != not)
        .expect("no other member")
}

// ---- joining ---------------------------------------------------------------------------------

#[actix::test]
async fn two_members_get_one_generation_and_only_the_leader_gets_the_member_list() {
    let store = MemStore::new();
    let addr = start(&store);
    let a = Join::new("a").protocols(&["range", "roundrobin"]);
    let b = Join::new("b").protocols(&["roundrobin", "range"]);

    // KIP-394: a new dynamic member first gets its id back with MEMBER_ID_REQUIRED.
    let first_a = a.clone().requiring_known_id().ask(&addr).await;
    assert_eq!(first_a.error, codes::MEMBER_ID_REQUIRED);
    assert_eq!(first_a.generation, -1);
    assert!(first_a.member_id.starts_with("a-"));
    let first_b = b.clone().requiring_known_id().ask(&addr).await;
    assert_eq!(first_b.error, codes::MEMBER_ID_REQUIRED);
    assert!(first_b.member_id.starts_with("b-"));
    assert_ne!(first_a.member_id, first_b.member_id);
    let (id_a, id_b) = (first_a.member_id, first_b.member_id);
    // Handed-out ids are not members yet.
    assert_eq!(heartbeat(&addr, &id_a, 0).await, codes::UNKNOWN_MEMBER_ID);

    // a's join waits in the barrier while b still holds a handed-out id.
    let mut rx_a = a.clone().requiring_known_id().id(&id_a).send(&addr);
    let during = describe(&addr).await;
    assert_eq!(during.state, "PreparingRebalance");
    assert!(outstanding(&mut rx_a), "a was answered before b joined");

    let rx_b = b.clone().requiring_known_id().id(&id_b).send(&addr);
    let (ja, jb) = (recv(rx_a).await, recv(rx_b).await);
    for j in [&ja, &jb] {
        assert_eq!(j.error, codes::NONE);
        assert_eq!(j.generation, 1);
        assert_eq!(j.protocol_type.as_deref(), Some("consumer"));
        // One vote each: the tie goes to the first member's ("a-...") preference.
        assert_eq!(j.protocol.as_deref(), Some("range"));
        assert!(!j.skip_assignment);
    }
    assert_eq!(ja.member_id, id_a);
    assert_eq!(jb.member_id, id_b);
    assert_eq!(ja.leader, jb.leader);
    assert!(ja.leader == id_a || ja.leader == id_b);

    let (leader, follower) = if ja.leader == id_a {
        (&ja, &jb)
    } else {
        (&jb, &ja)
    };
    assert!(follower.members.is_empty());
    let mut members = leader.members.clone();
    members.sort_by(|x, y| x.member_id.cmp(&y.member_id));
    assert_eq!(
        members,
        vec![
            JoinedMember {
                member_id: id_a.clone(),
                instance_id: None,
                metadata: metadata("a", "range"),
            },
            JoinedMember {
                member_id: id_b.clone(),
                instance_id: None,
                metadata: metadata("b", "range"),
            },
        ]
    );
    let after = describe(&addr).await;
    assert_eq!(after.state, "CompletingRebalance");
    assert!(after.exists);
    assert_eq!(after.protocol, "range");
}

#[actix::test]
async fn the_initial_rebalance_delay_gathers_members_into_the_first_generation() {
    let store = MemStore::new();
    let started = std::time::Instant::now();
    let delayed = CoordinatorConfig {
        initial_rebalance_delay_ms: 300,
        ..config()
    };
    let addr = start_with(GROUP, &store, delayed);
    // Without the delay a lone first member would get generation 1 at once.
    let mut rx_a = Join::new("a").send(&addr);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut rx_b = Join::new("b").send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert!(outstanding(&mut rx_a));
    assert!(outstanding(&mut rx_b));
    let (ja, jb) = (recv(rx_a).await, recv(rx_b).await);
    assert_eq!((ja.error, jb.error), (codes::NONE, codes::NONE));
    assert_eq!((ja.generation, jb.generation), (1, 1));
    assert_eq!(ja.leader, jb.leader);
    assert_eq!(leader_of(&[ja, jb]).members.len(), 2);
    // b arrived during the first delay, so the barrier waited one delay more.
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[actix::test]
async fn the_protocol_most_members_prefer_is_chosen() {
    let store = MemStore::new();
    let addr = start(&store);
    // The first member (by id) prefers range, but two of three prefer roundrobin; "sticky" is
    // not supported by everyone and cannot win.
    let joined = join_all(
        &addr,
        &[
            Join::new("a").protocols(&["range", "roundrobin"]),
            Join::new("b").protocols(&["sticky", "roundrobin", "range"]),
            Join::new("c").protocols(&["roundrobin", "range", "sticky"]),
        ],
    )
    .await;
    for j in &joined {
        assert_eq!(j.generation, 1);
        assert_eq!(j.protocol.as_deref(), Some("roundrobin"));
    }
    let leader = leader_of(&joined);
    assert_eq!(leader.members.len(), 3);
    for m in &leader.members {
        let client = &m.member_id[..1];
        assert_eq!(m.metadata, metadata(client, "roundrobin"));
    }
}

#[actix::test]
async fn followers_sync_waits_for_the_leader_and_each_member_gets_its_own_assignment() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = join_all(&addr, &[Join::new("a"), Join::new("b")]).await;
    let leader = leader_of(&joined).member_id.clone();
    let follower = other(&joined, &leader).member_id.clone();
    let stores_before = MemStore::count(&store.stores);

    let mut rx_follower = send_sync(&addr, &follower, 1, vec![]);
    assert_eq!(describe(&addr).await.state, "CompletingRebalance");
    assert!(
        outstanding(&mut rx_follower),
        "the follower synced before the leader"
    );
    // Heartbeats between JoinGroup and SyncGroup are fine.
    assert_eq!(heartbeat(&addr, &follower, 1).await, codes::NONE);

    let assignments = vec![
        (leader.clone(), assignment_for(&leader)),
        (follower.clone(), assignment_for(&follower)),
    ];
    let from_leader = recv(send_sync(&addr, &leader, 1, assignments)).await;
    let from_follower = recv(rx_follower).await;
    assert_eq!(
        from_leader,
        SyncResult {
            error: codes::NONE,
            protocol_type: Some("consumer".into()),
            protocol: Some("range".into()),
            assignment: assignment_for(&leader),
        }
    );
    assert_eq!(
        from_follower,
        SyncResult {
            error: codes::NONE,
            protocol_type: Some("consumer".into()),
            protocol: Some("range".into()),
            assignment: assignment_for(&follower),
        }
    );

    // The generation and its assignments were recorded before anyone heard of them.
    assert_eq!(MemStore::count(&store.stores), stores_before + 1);
    let stored = store.group(GROUP).expect("the generation was not stored");
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(stored.protocol.as_deref(), Some("range"));
    assert_eq!(stored.leader.as_deref(), Some(leader.as_str()));
    let by_id: HashMap<_, _> = stored
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m))
        .collect();
    assert_eq!(by_id.len(), 2);
    assert_eq!(by_id[&leader].assignment, assignment_for(&leader));
    assert_eq!(by_id[&follower].assignment, assignment_for(&follower));
    assert_eq!(by_id[&follower].subscription, metadata("b", "range"));
    assert_eq!(by_id[&follower].session_timeout_ms, 10_000);
    assert_eq!(by_id[&follower].rebalance_timeout_ms, 5_000);

    let description = describe(&addr).await;
    assert_eq!(description.state, "Stable");
    assert_eq!(description.protocol_type, "consumer");
    assert_eq!(description.protocol, "range");
    assert_eq!(description.members.len(), 2);
    for m in &description.members {
        assert_eq!(m.assignment, assignment_for(&m.member_id));
        assert_eq!(m.client_host, "/127.0.0.1");
    }

    // A repeated SyncGroup in a Stable group gets the same assignment again.
    let again = recv(send_sync(&addr, &follower, 1, vec![])).await;
    assert_eq!(again.assignment, assignment_for(&follower));
    // A SyncGroup naming another protocol is refused.
    let (reply, rx) = oneshot::channel();
    addr.do_send(SyncGroup {
        member_id: follower.clone(),
        instance_id: None,
        generation: 1,
        protocol_type: Some("consumer".into()),
        protocol: Some("roundrobin".into()),
        assignments: vec![],
        reply,
    });
    assert_eq!(recv(rx).await.error, codes::INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(
        recv(send_sync(&addr, &follower, 2, vec![])).await.error,
        codes::ILLEGAL_GENERATION
    );
    assert_eq!(
        recv(send_sync(&addr, "nobody", 1, vec![])).await.error,
        codes::UNKNOWN_MEMBER_ID
    );
}

// ---- heartbeats and rebalances ---------------------------------------------------------------

#[actix::test]
async fn heartbeat_answers_unknown_member_illegal_generation_rebalance_in_progress_and_none() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a"), Join::new("b")]).await;
    let a = joined[0].member_id.clone();

    assert_eq!(
        heartbeat(&addr, "nobody", 1).await,
        codes::UNKNOWN_MEMBER_ID
    );
    assert_eq!(heartbeat(&addr, &a, 0).await, codes::ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&addr, &a, 2).await, codes::ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::NONE);

    // A new member starts a rebalance: the others learn it from their heartbeats.
    let _rx_c = Join::new("c").send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::REBALANCE_IN_PROGRESS);
    // The membership checks still come first.
    assert_eq!(
        heartbeat(&addr, "nobody", 1).await,
        codes::UNKNOWN_MEMBER_ID
    );
    assert_eq!(heartbeat(&addr, &a, 7).await, codes::ILLEGAL_GENERATION);
}

#[actix::test]
async fn a_new_member_joining_a_stable_group_triggers_a_rebalance_to_the_next_generation() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a"), Join::new("b")]).await;
    let old_leader = leader_of(&joined).member_id.clone();
    let (a, b) = (joined[0].member_id.clone(), joined[1].member_id.clone());

    let first_c = Join::new("c").requiring_known_id().ask(&addr).await;
    assert_eq!(first_c.error, codes::MEMBER_ID_REQUIRED);
    // A handed-out id alone does not disturb the group.
    assert_eq!(describe(&addr).await.state, "Stable");
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::NONE);

    let c = first_c.member_id;
    let mut rx_c = Join::new("c").requiring_known_id().id(&c).send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::REBALANCE_IN_PROGRESS);
    assert_eq!(heartbeat(&addr, &b, 1).await, codes::REBALANCE_IN_PROGRESS);
    assert!(outstanding(&mut rx_c));

    let rx_a = Join::new("a").id(&a).send(&addr);
    let mut rx_c_still = rx_c;
    assert!(
        outstanding(&mut rx_c_still),
        "c was answered before b rejoined"
    );
    let rx_b = Join::new("b").id(&b).send(&addr);
    let joined2 = vec![recv(rx_a).await, recv(rx_b).await, recv(rx_c_still).await];
    for j in &joined2 {
        assert_eq!(j.error, codes::NONE);
        assert_eq!(j.generation, 2);
        // The leader keeps its role when it rejoins.
        assert_eq!(j.leader, old_leader);
    }
    assert_eq!(leader_of(&joined2).members.len(), 3);
    sync_all(&addr, &joined2).await;
    assert_eq!(describe(&addr).await.state, "Stable");
    let stored = store.group(GROUP).unwrap();
    assert_eq!(stored.generation, 2);
    assert_eq!(stored.members.len(), 3);
    assert_eq!(heartbeat(&addr, &c, 2).await, codes::NONE);
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::ILLEGAL_GENERATION);
}

#[actix::test]
async fn a_stable_follower_rejoining_unchanged_gets_the_current_generation_without_a_rebalance() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a"), Join::new("b")]).await;
    let leader = leader_of(&joined).member_id.clone();
    let follower = other(&joined, &leader).member_id.clone();
    let follower_client = &follower[..1];

    let again = Join::new(follower_client).id(&follower).ask(&addr).await;
    assert_eq!(again.error, codes::NONE);
    assert_eq!(again.generation, 1);
    assert_eq!(again.leader, leader);
    assert_eq!(describe(&addr).await.state, "Stable");

    // New protocols (or the leader rejoining) do rebalance.
    let _rx = Join::new(follower_client)
        .id(&follower)
        .protocols(&["range", "roundrobin"])
        .send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
}

#[actix::test]
async fn a_member_that_missed_its_join_answer_gets_it_again_while_completing() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = join_all(&addr, &[Join::new("a"), Join::new("b")]).await;
    for j in &joined {
        let client = &j.member_id[..1];
        let again = Join::new(client).id(&j.member_id).ask(&addr).await;
        assert_eq!(again, *j);
    }
    assert_eq!(describe(&addr).await.state, "CompletingRebalance");
}

#[actix::test]
async fn a_silent_member_expires_and_the_last_member_expiring_empties_the_group() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a"), Join::new("b").session(100)]).await;
    let (a, b) = (joined[0].member_id.clone(), joined[1].member_id.clone());

    // b never heartbeats; a's session is long.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let description = describe(&addr).await;
    assert_eq!(description.state, "PreparingRebalance");
    assert_eq!(member_ids(&description), vec![a.clone()]);
    assert_eq!(heartbeat(&addr, &b, 1).await, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::REBALANCE_IN_PROGRESS);

    // a rejoins alone (now with a short session of its own).
    let alone = Join::new("a").id(&a).session(100).ask(&addr).await;
    assert_eq!(alone.error, codes::NONE);
    assert_eq!(alone.generation, 2);
    assert_eq!(alone.leader, a);
    assert_eq!(alone.members.len(), 1);
    sync_all(&addr, &[alone]).await;
    assert_eq!(store.group(GROUP).unwrap().generation, 2);

    // Now a goes silent too: the group empties and the empty generation is recorded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let description = describe(&addr).await;
    assert_eq!(description.state, "Empty");
    assert!(description.members.is_empty());
    assert!(description.exists);
    let stored = store.group(GROUP).unwrap();
    assert_eq!(stored.generation, 3);
    assert!(stored.members.is_empty());
    assert_eq!(stored.leader, None);
    assert_eq!(stored.protocol, None);
    assert_eq!(heartbeat(&addr, &a, 2).await, codes::UNKNOWN_MEMBER_ID);
}

#[actix::test]
async fn a_member_that_keeps_heartbeating_outlives_its_session_timeout() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a").session(150)]).await;
    let a = joined[0].member_id.clone();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(heartbeat(&addr, &a, 1).await, codes::NONE);
    }
    assert_eq!(describe(&addr).await.state, "Stable");
}

#[actix::test]
async fn a_member_waiting_in_the_barrier_or_for_its_assignment_does_not_expire() {
    let store = MemStore::new();
    let addr = start(&store);
    // b's session is short, but it waits in the join barrier for a's handed-out id...
    let a = Join::new("a")
        .requiring_known_id()
        .ask(&addr)
        .await
        .member_id;
    let b = Join::new("b")
        .requiring_known_id()
        .ask(&addr)
        .await
        .member_id;
    let rx_b = Join::new("b")
        .session(100)
        .requiring_known_id()
        .id(&b)
        .send(&addr);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rx_a = Join::new("a").requiring_known_id().id(&a).send(&addr);
    let joined = vec![recv(rx_a).await, recv(rx_b).await];
    for j in &joined {
        assert_eq!(j.error, codes::NONE);
        assert_eq!(j.generation, 1);
    }
    // "a-..." sorts first: a leads.
    assert_eq!(leader_of(&joined).member_id, a);
    assert_eq!(joined[0].members.len(), 2);

    // ... and then for the leader's assignment.
    let rx_b = send_sync(&addr, &b, 1, vec![]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let assignments = vec![
        (a.clone(), assignment_for(&a)),
        (b.clone(), assignment_for(&b)),
    ];
    assert_eq!(
        recv(send_sync(&addr, &a, 1, assignments)).await.error,
        codes::NONE
    );
    assert_eq!(recv(rx_b).await.assignment, assignment_for(&b));
    let description = describe(&addr).await;
    assert_eq!(description.state, "Stable");
    assert_eq!(description.members.len(), 2);
}

#[actix::test]
async fn leave_group_answers_each_member_and_rebalances_at_once() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a"), Join::new("b")]).await;
    let (a, b) = (joined[0].member_id.clone(), joined[1].member_id.clone());

    let left = leave(&addr, &[&a, "ghost"]).await;
    assert_eq!(
        left,
        LeaveResult {
            error: codes::NONE,
            members: vec![codes::NONE, codes::UNKNOWN_MEMBER_ID],
        }
    );
    let description = describe(&addr).await;
    assert_eq!(description.state, "PreparingRebalance");
    assert_eq!(member_ids(&description), vec![b.clone()]);
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(heartbeat(&addr, &b, 1).await, codes::REBALANCE_IN_PROGRESS);

    let alone = Join::new("b").id(&b).ask(&addr).await;
    assert_eq!(alone.generation, 2);
    assert_eq!(alone.leader, b);
    sync_all(&addr, &[alone]).await;

    // The last member leaving empties the group, and the empty generation is recorded.
    let stores_before = MemStore::count(&store.stores);
    assert_eq!(leave(&addr, &[&b]).await.members, vec![codes::NONE]);
    let description = describe(&addr).await;
    assert_eq!(description.state, "Empty");
    assert!(description.members.is_empty());
    assert_eq!(MemStore::count(&store.stores), stores_before + 1);
    let stored = store.group(GROUP).unwrap();
    assert_eq!(stored.generation, 3);
    assert!(stored.members.is_empty());
    assert_eq!(stored.leader, None);
}

#[actix::test]
async fn a_leaving_pending_member_releases_the_barrier() {
    let store = MemStore::new();
    let addr = start(&store);
    let a = Join::new("a")
        .requiring_known_id()
        .ask(&addr)
        .await
        .member_id;
    let b = Join::new("b")
        .requiring_known_id()
        .ask(&addr)
        .await
        .member_id;
    let mut rx_a = Join::new("a").requiring_known_id().id(&a).send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert!(outstanding(&mut rx_a));
    assert_eq!(leave(&addr, &[&b]).await.members, vec![codes::NONE]);
    let alone = recv(rx_a).await;
    assert_eq!(alone.error, codes::NONE);
    assert_eq!(alone.generation, 1);
    assert_eq!(alone.members.len(), 1);
}

#[actix::test]
async fn a_handed_out_member_id_that_never_comes_back_stops_holding_the_barrier() {
    let store = MemStore::new();
    let addr = start(&store);
    let a = Join::new("a")
        .requiring_known_id()
        .ask(&addr)
        .await
        .member_id;
    let b = Join::new("b")
        .session(100)
        .requiring_known_id()
        .ask(&addr)
        .await
        .member_id;
    let rx_a = Join::new("a").requiring_known_id().id(&a).send(&addr);
    // b's id expires after its session timeout and a's generation completes without it.
    let alone = recv(rx_a).await;
    assert_eq!(alone.error, codes::NONE);
    assert_eq!(alone.generation, 1);
    assert_eq!(alone.members.len(), 1);
    let late = Join::new("b").requiring_known_id().id(&b).ask(&addr).await;
    assert_eq!(late.error, codes::UNKNOWN_MEMBER_ID);
}

#[actix::test]
async fn members_that_do_not_rejoin_within_the_rebalance_timeout_are_dropped() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(
        &addr,
        &[Join::new("a").rebalance(150), Join::new("b").rebalance(150)],
    )
    .await;
    let (a, b) = (joined[0].member_id.clone(), joined[1].member_id.clone());

    let rx_c = Join::new("c").rebalance(150).send(&addr);
    let rx_a = Join::new("a").id(&a).rebalance(150).send(&addr);
    // b never rejoins: the barrier closes after the rebalance timeout without it.
    let (ja, jc) = (recv(rx_a).await, recv(rx_c).await);
    assert_eq!(ja.error, codes::NONE);
    assert_eq!(jc.error, codes::NONE);
    assert_eq!(ja.generation, 2);
    assert_eq!(jc.generation, 2);
    let description = describe(&addr).await;
    assert_eq!(description.state, "CompletingRebalance");
    assert_eq!(description.members.len(), 2);
    assert!(!member_ids(&description).contains(&b));
    assert_eq!(heartbeat(&addr, &b, 1).await, codes::UNKNOWN_MEMBER_ID);
}

#[actix::test]
async fn a_leader_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = join_all(
        &addr,
        &[Join::new("a").rebalance(150), Join::new("b").rebalance(150)],
    )
    .await;
    let leader = leader_of(&joined).member_id.clone();
    let follower = other(&joined, &leader).member_id.clone();
    let follower_client = follower[..1].to_owned();

    // The follower syncs; the leader never does.
    let waiting = send_sync(&addr, &follower, 1, vec![]);
    let failed = recv(waiting).await;
    assert_eq!(failed.error, codes::REBALANCE_IN_PROGRESS);
    let description = describe(&addr).await;
    assert_eq!(description.state, "PreparingRebalance");
    assert_eq!(member_ids(&description), vec![follower.clone()]);
    assert_eq!(heartbeat(&addr, &leader, 1).await, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(
        heartbeat(&addr, &follower, 1).await,
        codes::REBALANCE_IN_PROGRESS
    );

    // The follower rejoins and leads generation 2 alone.
    let alone = Join::new(&follower_client)
        .id(&follower)
        .rebalance(150)
        .ask(&addr)
        .await;
    assert_eq!(alone.error, codes::NONE);
    assert_eq!(alone.generation, 2);
    assert_eq!(alone.leader, follower);
    sync_all(&addr, &[alone]).await;
    assert_eq!(store.group(GROUP).unwrap().generation, 2);
}

#[actix::test]
async fn while_the_assignment_is_being_written_followers_wait_and_commits_are_refused() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = join_all(&addr, &[Join::new("a"), Join::new("b")]).await;
    let leader = leader_of(&joined).member_id.clone();
    let follower = other(&joined, &leader).member_id.clone();

    let gate = store.hold_stores();
    let assignments = vec![
        (leader.clone(), assignment_for(&leader)),
        (follower.clone(), assignment_for(&follower)),
    ];
    let mut rx_leader = send_sync(&addr, &leader, 1, assignments);
    let mut rx_follower = send_sync(&addr, &follower, 1, vec![]);
    assert_eq!(describe(&addr).await.state, "CompletingRebalance");
    assert!(outstanding(&mut rx_leader));
    assert!(outstanding(&mut rx_follower));
    assert_eq!(heartbeat(&addr, &follower, 1).await, codes::NONE);
    assert_eq!(
        commit(&addr, &follower, 1, vec![offset("t", 0, 1)]).await,
        codes::REBALANCE_IN_PROGRESS
    );

    gate.add_permits(1);
    assert_eq!(recv(rx_leader).await.assignment, assignment_for(&leader));
    assert_eq!(
        recv(rx_follower).await.assignment,
        assignment_for(&follower)
    );
    assert_eq!(describe(&addr).await.state, "Stable");
}

#[actix::test]
async fn a_member_leaving_while_the_assignment_is_written_restarts_the_rebalance() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = join_all(&addr, &[Join::new("a"), Join::new("b")]).await;
    let leader = leader_of(&joined).member_id.clone();
    let follower = other(&joined, &leader).member_id.clone();
    let leader_client = leader[..1].to_owned();

    let gate = store.hold_stores();
    let assignments = vec![
        (leader.clone(), assignment_for(&leader)),
        (follower.clone(), assignment_for(&follower)),
    ];
    let rx_leader = send_sync(&addr, &leader, 1, assignments);
    assert_eq!(leave(&addr, &[&follower]).await.members, vec![codes::NONE]);
    assert_eq!(recv(rx_leader).await.error, codes::REBALANCE_IN_PROGRESS);
    // The late write's answer changes nothing.
    gate.add_permits(10);
    let description = describe(&addr).await;
    assert_eq!(description.state, "PreparingRebalance");
    assert_eq!(member_ids(&description), vec![leader.clone()]);

    let alone = Join::new(&leader_client).id(&leader).ask(&addr).await;
    assert_eq!(alone.generation, 2);
    sync_all(&addr, &[alone]).await;
    let stored = store.group(GROUP).unwrap();
    assert_eq!(stored.generation, 2);
    assert_eq!(stored.members.len(), 1);
}

#[actix::test]
async fn a_failed_assignment_write_fails_the_syncs_and_rebalances() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = join_all(&addr, &[Join::new("a"), Join::new("b")]).await;
    let leader = leader_of(&joined).member_id.clone();
    let follower = other(&joined, &leader).member_id.clone();

    store.fail_writes(Some(codes::NOT_COORDINATOR));
    let rx_follower = send_sync(&addr, &follower, 1, vec![]);
    let assignments = vec![(follower.clone(), assignment_for(&follower))];
    let from_leader = recv(send_sync(&addr, &leader, 1, assignments)).await;
    assert_eq!(from_leader.error, codes::NOT_COORDINATOR);
    assert_eq!(recv(rx_follower).await.error, codes::NOT_COORDINATOR);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert_eq!(store.group(GROUP), None);

    store.fail_writes(None);
    let rx_a = Join::new(&joined[0].member_id[..1])
        .id(&joined[0].member_id)
        .send(&addr);
    let rx_b = Join::new(&joined[1].member_id[..1])
        .id(&joined[1].member_id)
        .send(&addr);
    let rejoined = vec![recv(rx_a).await, recv(rx_b).await];
    assert!(rejoined.iter().all(|j| j.generation == 2));
    sync_all(&addr, &rejoined).await;
    assert_eq!(store.group(GROUP).unwrap().generation, 2);
}

// ---- static membership -----------------------------------------------------------------------

#[actix::test]
async fn a_static_member_rejoining_with_a_new_id_keeps_the_generation_and_fences_the_old_id() {
    let store = MemStore::new();
    let addr = start(&store);
    // "b-..." sorts before "inst-a-...": b leads.
    let joined = stable_group(&addr, &[Join::new("a").instance("inst-a"), Join::new("b")]).await;
    let old = joined[0].member_id.clone();
    let b = joined[1].member_id.clone();
    assert!(old.starts_with("inst-a-"));
    assert_eq!(leader_of(&joined).member_id, b);
    let stores_before = MemStore::count(&store.stores);

    // The static member restarts: it has forgotten its member id.
    let again = Join::new("a").instance("inst-a").ask(&addr).await;
    assert_eq!(again.error, codes::NONE);
    assert_ne!(again.member_id, old);
    assert!(again.member_id.starts_with("inst-a-"));
    assert_eq!(again.generation, 1);
    assert_eq!(again.leader, b);
    assert_eq!(again.protocol.as_deref(), Some("range"));
    assert!(again.members.is_empty());
    assert!(!again.skip_assignment);
    let new = again.member_id;

    // No rebalance: the group stays Stable and the other member carries on.
    let description = describe(&addr).await;
    assert_eq!(description.state, "Stable");
    let ids = member_ids(&description);
    assert!(ids.contains(&new) && ids.contains(&b) && !ids.contains(&old));
    assert_eq!(heartbeat(&addr, &b, 1).await, codes::NONE);
    // The new id was recorded before the member heard of it.
    assert_eq!(MemStore::count(&store.stores), stores_before + 1);
    let stored = store.group(GROUP).unwrap();
    assert_eq!(stored.generation, 1);
    assert!(stored.members.iter().any(|m| m.member_id == new
        && m.instance_id.as_deref() == Some("inst-a")
        && m.assignment == assignment_for(&old)));

    // The old incarnation is fenced; the new one is a member with the old assignment.
    assert_eq!(
        heartbeat_as(&addr, &old, Some("inst-a"), 1).await,
        codes::FENCED_INSTANCE_ID
    );
    assert_eq!(heartbeat(&addr, &old, 1).await, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(
        heartbeat_as(&addr, &new, Some("inst-a"), 1).await,
        codes::NONE
    );
    let (reply, rx) = oneshot::channel();
    addr.do_send(SyncGroup {
        member_id: new.clone(),
        instance_id: Some("inst-a".into()),
        generation: 1,
        protocol_type: None,
        protocol: None,
        assignments: vec![],
        reply,
    });
    let synced = recv(rx).await;
    assert_eq!(synced.error, codes::NONE);
    assert_eq!(synced.assignment, assignment_for(&old));
    assert_eq!(
        commit(&addr, &new, 1, vec![offset("t", 0, 5)]).await,
        codes::NONE
    );
}

#[actix::test]
async fn a_static_leader_rejoining_gets_the_members_but_must_not_assign() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a").instance("inst-a")]).await;
    let old = joined[0].member_id.clone();
    let again = Join::new("a").instance("inst-a").ask(&addr).await;
    assert_eq!(again.error, codes::NONE);
    assert_eq!(again.generation, 1);
    assert_eq!(again.leader, again.member_id);
    assert!(again.skip_assignment);
    assert_eq!(again.members.len(), 1);
    assert_eq!(again.members[0].member_id, again.member_id);
    assert_eq!(again.members[0].instance_id.as_deref(), Some("inst-a"));
    assert_eq!(describe(&addr).await.state, "Stable");
    assert_eq!(
        heartbeat_as(&addr, &old, Some("inst-a"), 1).await,
        codes::FENCED_INSTANCE_ID
    );
}

#[actix::test]
async fn a_static_member_leaves_by_its_instance_id() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a").instance("inst-a"), Join::new("b")]).await;
    let a = joined[0].member_id.clone();
    let leaving = |member_id: &str, instance: &str| LeavingMember {
        member_id: member_id.to_owned(),
        instance_id: Some(instance.to_owned()),
    };
    let refused = call(&addr, |reply| LeaveGroup {
        members: vec![leaving("someone-else", "inst-a"), leaving("", "inst-x")],
        reply,
    })
    .await
    .unwrap();
    assert_eq!(
        refused.members,
        vec![codes::FENCED_INSTANCE_ID, codes::UNKNOWN_MEMBER_ID]
    );
    assert_eq!(describe(&addr).await.state, "Stable");

    let left = call(&addr, |reply| LeaveGroup {
        members: vec![leaving("", "inst-a")],
        reply,
    })
    .await
    .unwrap();
    assert_eq!(left.members, vec![codes::NONE]);
    let description = describe(&addr).await;
    assert_eq!(description.state, "PreparingRebalance");
    assert!(!member_ids(&description).contains(&a));
    assert_eq!(
        heartbeat_as(&addr, &a, Some("inst-a"), 1).await,
        codes::UNKNOWN_MEMBER_ID
    );
}

// ---- refused joins ---------------------------------------------------------------------------

#[actix::test]
async fn join_with_another_protocol_type_or_no_common_protocol_is_inconsistent() {
    let store = MemStore::new();
    let addr = start(&store);
    assert_eq!(
        Join::new("x").protocol_type("").ask(&addr).await.error,
        codes::INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(
        Join::new("x").protocols(&[]).ask(&addr).await.error,
        codes::INCONSISTENT_GROUP_PROTOCOL
    );
    let joined = stable_group(&addr, &[Join::new("a").protocols(&["range", "sticky"])]).await;
    let a = joined[0].member_id.clone();

    let other_type = Join::new("b").protocol_type("connect").ask(&addr).await;
    assert_eq!(other_type.error, codes::INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(other_type.generation, -1);
    let no_common = Join::new("b").protocols(&["roundrobin"]).ask(&addr).await;
    assert_eq!(no_common.error, codes::INCONSISTENT_GROUP_PROTOCOL);
    // A known member is refused the same way.
    let known = Join::new("a")
        .id(&a)
        .protocols(&["roundrobin"])
        .ask(&addr)
        .await;
    assert_eq!(known.error, codes::INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(known.member_id, a);
    // None of that disturbed the group.
    assert_eq!(describe(&addr).await.state, "Stable");
    assert_eq!(heartbeat(&addr, &a, 1).await, codes::NONE);
    // One common protocol is enough.
    let _rx = Join::new("b")
        .protocols(&["roundrobin", "sticky"])
        .send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
}

#[actix::test]
async fn join_with_a_session_timeout_outside_the_configured_bounds_is_refused() {
    let store = MemStore::new();
    let addr = start(&store);
    for ms in [0, 9, 100_001, -1] {
        let refused = Join::new("a").session(ms).ask(&addr).await;
        assert_eq!(refused.error, codes::INVALID_SESSION_TIMEOUT, "{ms}");
    }
    assert_eq!(describe(&addr).await.state, "Empty");
    assert!(!describe(&addr).await.exists);
    for ms in [10, 100_000] {
        let accepted = Join::new("a").session(ms).ask(&addr).await;
        assert_eq!(accepted.error, codes::NONE, "{ms}");
    }
}

// ---- offsets ---------------------------------------------------------------------------------

#[actix::test]
async fn a_standalone_commit_to_an_empty_group_is_stored() {
    let store = MemStore::new();
    let addr = start(&store);
    assert!(!describe(&addr).await.exists);
    let offsets = vec![offset("t", 0, 42), offset("t", 1, 7)];
    assert_eq!(commit(&addr, "", -1, offsets.clone()).await, codes::NONE);
    assert_eq!(MemStore::count(&store.commits), 1);
    assert_eq!(store.offsets(GROUP), offsets);
    let description = describe(&addr).await;
    assert_eq!(description.state, "Empty");
    assert!(description.exists);

    // A store failure code is passed back as it is.
    store.fail_writes(Some(codes::NOT_COORDINATOR));
    assert_eq!(
        commit(&addr, "", -1, vec![offset("t", 0, 50)]).await,
        codes::NOT_COORDINATOR
    );
    assert_eq!(store.offsets(GROUP)[0].offset, 42);
}

#[actix::test]
async fn a_commit_with_a_generation_to_a_group_that_does_not_exist_is_an_illegal_generation() {
    let store = MemStore::new();
    let addr = start(&store);
    assert_eq!(
        commit(&addr, "someone", 3, vec![offset("t", 0, 1)]).await,
        codes::ILLEGAL_GENERATION
    );
    assert_eq!(MemStore::count(&store.commits), 0);
}

#[actix::test]
async fn a_member_commit_checks_member_generation_and_state() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a"), Join::new("b")]).await;
    let (a, b) = (joined[0].member_id.clone(), joined[1].member_id.clone());
    let one = || vec![offset("t", 0, 10)];

    assert_eq!(commit(&addr, &a, 2, one()).await, codes::ILLEGAL_GENERATION);
    assert_eq!(commit(&addr, &a, 0, one()).await, codes::ILLEGAL_GENERATION);
    assert_eq!(
        commit(&addr, "ghost", 1, one()).await,
        codes::UNKNOWN_MEMBER_ID
    );
    // A standalone commit to a group with members is not one.
    assert_eq!(commit(&addr, "", -1, one()).await, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(MemStore::count(&store.commits), 0);
    assert_eq!(commit(&addr, &a, 1, one()).await, codes::NONE);
    assert_eq!(MemStore::count(&store.commits), 1);

    // During PreparingRebalance the current generation may still commit (Kafka allows it).
    assert_eq!(leave(&addr, &[&a]).await.members, vec![codes::NONE]);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert_eq!(
        commit(&addr, &b, 1, vec![offset("t", 0, 11)]).await,
        codes::NONE
    );

    // During CompletingRebalance: REBALANCE_IN_PROGRESS.
    let alone = Join::new("b").id(&b).ask(&addr).await;
    assert_eq!(alone.generation, 2);
    assert_eq!(describe(&addr).await.state, "CompletingRebalance");
    assert_eq!(
        commit(&addr, &b, 2, vec![offset("t", 0, 12)]).await,
        codes::REBALANCE_IN_PROGRESS
    );
    sync_all(&addr, &[alone]).await;
    // A store failure is passed back to the member.
    store.fail_writes(Some(codes::UNKNOWN_TOPIC_OR_PARTITION));
    assert_eq!(
        commit(&addr, &b, 2, vec![offset("t", 0, 13)]).await,
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    store.fail_writes(None);
    assert_eq!(
        commit(&addr, &b, 2, vec![offset("t", 0, 14)]).await,
        codes::NONE
    );
    assert_eq!(store.offsets(GROUP), vec![offset("t", 0, 14)]);
}

#[actix::test]
async fn offset_delete_needs_an_existing_group() {
    let store = MemStore::new();
    let addr = start(&store);
    let answer = call(&addr, |reply| DeleteOffsets {
        partitions: vec![("t".into(), 0)],
        reply,
    })
    .await
    .unwrap();
    assert_eq!(answer, (codes::GROUP_ID_NOT_FOUND, vec![]));
    assert_eq!(
        commit(&addr, "", -1, vec![offset("t", 0, 1), offset("t", 1, 2)]).await,
        codes::NONE
    );
    let answer = call(&addr, |reply| DeleteOffsets {
        partitions: vec![("t".into(), 0)],
        reply,
    })
    .await
    .unwrap();
    assert_eq!(answer, (codes::NONE, vec![codes::NONE]));
    assert_eq!(store.offsets(GROUP), vec![offset("t", 1, 2)]);
}

// ---- failover --------------------------------------------------------------------------------

fn stored_member(id: &str, client: &str, session_timeout_ms: i32) -> StoredMember {
    StoredMember {
        member_id: id.to_owned(),
        instance_id: None,
        client_id: client.to_owned(),
        client_host: "/10.0.0.1".to_owned(),
        session_timeout_ms,
        rebalance_timeout_ms: 200,
        subscription: metadata(client, "range"),
        assignment: assignment_for(id),
    }
}

fn stored_group(session_timeout_ms: i32) -> StoredGroup {
    StoredGroup {
        protocol_type: Some("consumer".to_owned()),
        generation: 7,
        protocol: Some("range".to_owned()),
        leader: Some("m1".to_owned()),
        members: vec![
            stored_member("m1", "c1", session_timeout_ms),
            stored_member("m2", "c2", session_timeout_ms),
        ],
        state_since_ms: 1,
    }
}

#[actix::test]
async fn a_restored_generation_carries_on_without_a_rebalance() {
    let store = MemStore::holding(GROUP, stored_group(10_000));
    let addr = start(&store);
    assert!(describe(&addr).await.exists);
    assert_eq!(MemStore::count(&store.loads), 1);
    assert_eq!(heartbeat(&addr, "m1", 7).await, codes::NONE);
    assert_eq!(heartbeat(&addr, "m2", 7).await, codes::NONE);
    assert_eq!(heartbeat(&addr, "m2", 6).await, codes::ILLEGAL_GENERATION);

    let description = describe(&addr).await;
    assert_eq!(description.state, "Stable");
    assert!(description.exists);
    assert_eq!(description.protocol, "range");
    assert_eq!(member_ids(&description), vec!["m1", "m2"]);
    assert_eq!(description.members[1].metadata, metadata("c2", "range"));
    assert_eq!(description.members[1].assignment, assignment_for("m2"));

    // A follower that missed its sync answer and one that rejoins unchanged both carry on.
    let synced = recv(send_sync(&addr, "m2", 7, vec![])).await;
    assert_eq!(synced.error, codes::NONE);
    assert_eq!(synced.assignment, assignment_for("m2"));
    let rejoined = Join::new("c2").id("m2").ask(&addr).await;
    assert_eq!(rejoined.error, codes::NONE);
    assert_eq!(rejoined.generation, 7);
    assert_eq!(rejoined.leader, "m1");
    assert_eq!(
        commit(&addr, "m1", 7, vec![offset("t", 0, 3)]).await,
        codes::NONE
    );
    assert_eq!(describe(&addr).await.state, "Stable");
    assert_eq!(MemStore::count(&store.stores), 0);
}

#[actix::test]
async fn restored_members_that_stay_silent_are_removed_after_their_session_timeout() {
    let store = MemStore::holding(GROUP, stored_group(100));
    let addr = start(&store);
    assert_eq!(heartbeat(&addr, "m1", 7).await, codes::NONE);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(heartbeat(&addr, "m1", 7).await, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(heartbeat(&addr, "m2", 7).await, codes::UNKNOWN_MEMBER_ID);
    let description = describe(&addr).await;
    assert_eq!(description.state, "Empty");
    assert!(description.members.is_empty());
    let stored = store.group(GROUP).unwrap();
    assert_eq!(stored.generation, 8);
    assert!(stored.members.is_empty());
}

#[actix::test]
async fn a_restored_empty_group_continues_its_generations() {
    let record = StoredGroup {
        protocol_type: Some("consumer".to_owned()),
        generation: 5,
        ..Default::default()
    };
    let store = MemStore::holding(GROUP, record);
    let addr = start(&store);
    let description = describe(&addr).await;
    assert_eq!(description.state, "Empty");
    assert!(description.exists);
    let first = Join::new("a").ask(&addr).await;
    assert_eq!(first.error, codes::NONE);
    assert_eq!(first.generation, 6);
}

#[actix::test]
async fn a_group_whose_state_cannot_be_loaded_stops() {
    let store = MemStore::new();
    *store.fail_load.lock().unwrap() = Some(codes::COORDINATOR_LOAD_IN_PROGRESS);
    let addr = start(&store);
    let rx = Join::new("a").send(&addr);
    assert!(tokio::time::timeout(Duration::from_secs(3), rx)
        .await
        .unwrap()
        .is_err());
}

// ---- deleting and unloading ------------------------------------------------------------------

#[actix::test]
async fn delete_group_refuses_a_group_with_members_or_that_does_not_exist() {
    let store = MemStore::new();
    let unknown = start_group("unknown", &store);
    assert_eq!(
        call(&unknown, |reply| DeleteGroup { reply }).await,
        Some(codes::GROUP_ID_NOT_FOUND)
    );

    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a")]).await;
    assert_eq!(
        call(&addr, |reply| DeleteGroup { reply }).await,
        Some(codes::NON_EMPTY_GROUP)
    );
    // Also while rebalancing.
    let _rx = Join::new("b").send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert_eq!(
        call(&addr, |reply| DeleteGroup { reply }).await,
        Some(codes::NON_EMPTY_GROUP)
    );
    assert_eq!(MemStore::count(&store.deletes), 0);
    assert_eq!(
        heartbeat(&addr, &joined[0].member_id, 1).await,
        codes::REBALANCE_IN_PROGRESS
    );
}

#[actix::test]
async fn delete_group_removes_an_empty_group_with_offsets() {
    let store = MemStore::new();
    let addr = start(&store);
    assert_eq!(
        commit(&addr, "", -1, vec![offset("t", 0, 42)]).await,
        codes::NONE
    );
    // A failed delete is passed back and the group stays.
    store.fail_writes(Some(codes::NOT_COORDINATOR));
    assert_eq!(
        call(&addr, |reply| DeleteGroup { reply }).await,
        Some(codes::NOT_COORDINATOR)
    );
    assert!(describe(&addr).await.exists);
    store.fail_writes(None);

    assert_eq!(
        call(&addr, |reply| DeleteGroup { reply }).await,
        Some(codes::NONE)
    );
    assert_eq!(MemStore::count(&store.deletes), 2);
    assert!(store.offsets(GROUP).is_empty());
    // The actor is gone.
    assert_eq!(call(&addr, |reply| DescribeGroup { reply }).await, None);
}

#[actix::test]
async fn delete_group_removes_a_group_its_members_left() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a")]).await;
    assert_eq!(
        leave(&addr, &[&joined[0].member_id]).await.members,
        vec![codes::NONE]
    );
    assert_eq!(describe(&addr).await.state, "Empty");
    assert_eq!(
        call(&addr, |reply| DeleteGroup { reply }).await,
        Some(codes::NONE)
    );
    assert_eq!(store.group(GROUP), None);
}

#[actix::test]
async fn unload_answers_a_pending_join_with_not_coordinator() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = stable_group(&addr, &[Join::new("a")]).await;
    let mut rx_b = Join::new("b").send(&addr);
    assert_eq!(describe(&addr).await.state, "PreparingRebalance");
    assert!(outstanding(&mut rx_b));

    addr.do_send(Unload);
    let answer = recv(rx_b).await;
    assert_eq!(answer.error, codes::NOT_COORDINATOR);
    assert!(answer.member_id.starts_with("b-"));
    // The actor is gone.
    let hb = call(&addr, |reply| Heartbeat {
        member_id: joined[0].member_id.clone(),
        instance_id: None,
        generation: 1,
        reply,
    })
    .await;
    assert_eq!(hb, None);
}

#[actix::test]
async fn unload_answers_a_pending_sync_with_not_coordinator() {
    let store = MemStore::new();
    let addr = start(&store);
    let joined = join_all(&addr, &[Join::new("a"), Join::new("b")]).await;
    let leader = leader_of(&joined).member_id.clone();
    let follower = other(&joined, &leader).member_id.clone();
    let mut rx = send_sync(&addr, &follower, 1, vec![]);
    assert_eq!(describe(&addr).await.state, "CompletingRebalance");
    assert!(outstanding(&mut rx));
    addr.do_send(Unload);
    assert_eq!(recv(rx).await.error, codes::NOT_COORDINATOR);
}

#[actix::test]
async fn a_coordinator_that_lost_the_group_meanwhile_unloads_instead_of_answering() {
    let store = MemStore::holding(GROUP, stored_group(10_000));
    let addr = start(&store);
    assert_eq!(heartbeat(&addr, "m1", 7).await, codes::NONE);
    // The placement moved on (this node was paused while the group went elsewhere): the
    // members and generation it holds are stale.
    store.epoch.store(5, Ordering::SeqCst);
    assert_eq!(heartbeat(&addr, "m1", 7).await, codes::NOT_COORDINATOR);
    // The actor stopped; a new one loads at the current epoch and serves again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!addr.connected());
    let addr = start(&store);
    assert_eq!(heartbeat(&addr, "m1", 7).await, codes::NONE);
    assert_eq!(MemStore::count(&store.loads), 2);
}

#[actix::test]
async fn the_actor_of_a_group_that_does_not_exist_stops() {
    let store = MemStore::new();
    let addr = start(&store);
    let description = describe(&addr).await;
    assert!(!description.exists);
    assert_eq!(
        heartbeat(&addr, "nobody", 1).await,
        codes::UNKNOWN_MEMBER_ID
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!addr.connected(), "an actor for a made-up group name stays");

    // A group that exists keeps its actor.
    let store = MemStore::holding(GROUP, stored_group(60_000));
    let addr = start(&store);
    assert!(describe(&addr).await.exists);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(addr.connected());
}
