use super::*;
use crate::domain::pipeline::{CommandLine, RetryPolicy, Task, TaskKind, TriggerRule};

fn pipeline(name: &str, command: &str) -> Pipeline {
    Pipeline {
        name: name.to_owned(),
        owner: "ml".to_owned(),
        description: String::new(),
        tags: BTreeMap::new(),
        schedule: None,
        catchup: false,
        start_date_micros: None,
        max_active_runs: 1,
        max_active_tasks: 4,
        params: Vec::new(),
        tasks: vec![Task {
            name: "a".to_owned(),
            kind: TaskKind::Command {
                command: CommandLine::Shell(command.to_owned()),
                image: None,
                working_dir: None,
            },
            dependencies: Vec::new(),
            trigger_rule: TriggerRule::AllSuccess,
            retry: RetryPolicy::default(),
            execution_timeout: None,
            resources: Default::default(),
            env: BTreeMap::new(),
            secrets: Vec::new(),
        }],
    }
}

fn new_run(id: &str, request_key: Option<&str>) -> NewRun {
    NewRun {
        id: id.to_owned(),
        pipeline: "p".to_owned(),
        pipeline_version: 1,
        trigger: RunTrigger::Manual,
        triggered_by: "test".to_owned(),
        logical_date: 10,
        interval: (10, 10),
        params: BTreeMap::new(),
        schedule_key: None,
        request_key: request_key.map(str::to_owned),
        tasks: vec![("a".to_owned(), "command".to_owned())],
    }
}

pub(crate) async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("o.db").display());
    let store = Store::connect(&url, 4, Duration::from_secs(5))
        .await
        .unwrap();
    (store, dir)
}

pub(crate) async fn postgres_store(schema: &str) -> Option<Store> {
    let admin = plinth_runtime::database::connect(
        "postgres://postgres@127.0.0.1:5432/test",
        2,
        Duration::from_secs(3),
    )
    .await
    .ok()?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await
        .ok()?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .ok()?;
    admin.close().await;
    let url = format!("postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}");
    Some(
        Store::connect(&url, 8, Duration::from_secs(5))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn apply_versions_only_changes() {
    let (store, _dir) = sqlite_store().await;
    let item = |command: &str| ApplyItem {
        pipeline: pipeline("p", command),
        yaml: format!("# {command}"),
        first_tick: None,
    };
    assert_eq!(
        store.apply(&[item("true")], 1).await.unwrap(),
        vec![(1, ApplyOutcome::Created)]
    );
    assert_eq!(
        store.apply(&[item("true")], 2).await.unwrap(),
        vec![(1, ApplyOutcome::Unchanged)]
    );
    assert_eq!(
        store.apply(&[item("false")], 3).await.unwrap(),
        vec![(2, ApplyOutcome::Updated)]
    );
    let stored = store.pipeline("p").await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    let first = store.pipeline_version("p", 1).await.unwrap().unwrap();
    assert_eq!(first, pipeline("p", "true"));
}

#[tokio::test]
async fn a_request_key_makes_a_run_idempotent_and_a_claim_happens_once() {
    let (store, _dir) = sqlite_store().await;
    let (first, new) = store
        .create_run(&new_run("r1", Some("p/k")), 5)
        .await
        .unwrap();
    assert!(new);
    let (again, new) = store
        .create_run(&new_run("r2", Some("p/k")), 6)
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again.id, first.id);
    assert!(store.start_run(&first, 1, 7).await.unwrap());
    assert!(!store.start_run(&first, 1, 7).await.unwrap());
    let task = store.tasks("r1").await.unwrap().remove(0);
    assert!(
        store
            .transition_task(&first, &task, TaskState::Queued, "", 8)
            .await
            .unwrap()
    );
    let queued = store.tasks("r1").await.unwrap().remove(0);
    assert_eq!(
        store
            .claim_task(&first, &queued, "x", 100, 9)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .claim_task(&first, &queued, "y", 100, 9)
            .await
            .unwrap(),
        None
    );
    let end = AttemptEnd {
        attempt_state: TaskState::Succeeded,
        task_state: TaskState::Succeeded,
        next_attempt_time: None,
        exit_code: Some(0),
        reason: "exit code 0".to_owned(),
    };
    assert!(
        !store
            .finish_attempt(&first, "a", 1, "y", &end, 10)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_attempt(&first, "a", 1, "x", &end, 10)
            .await
            .unwrap()
    );
    let attempts = store.attempts("r1").await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].state, TaskState::Succeeded);
    let events = store.events_after(0, 100).await.unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|event| match (event.run_state, event.task_state) {
            (Some(state), _) => format!("run:{state}"),
            (_, Some(state)) => format!("{}:{state}", event.task),
            _ => "?".to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run:queued",
            "run:running",
            "a:queued",
            "a:running",
            "a:succeeded"
        ]
    );
}

#[tokio::test]
async fn two_replicas_on_postgres_claim_each_task_once() {
    let Some(store) = postgres_store("orchestrator_claims").await else {
        panic!("PostgreSQL at 127.0.0.1:5432 is required (make test starts it)");
    };
    let (run, _) = store.create_run(&new_run("r-pg", None), 1).await.unwrap();
    assert!(store.start_run(&run, 1, 2).await.unwrap());
    let task = store.tasks("r-pg").await.unwrap().remove(0);
    assert!(
        store
            .transition_task(&run, &task, TaskState::Queued, "", 3)
            .await
            .unwrap()
    );
    let queued = store.tasks("r-pg").await.unwrap().remove(0);
    let mut claims = Vec::new();
    for replica in 0..8 {
        let store = store.clone();
        let run = run.clone();
        let queued = queued.clone();
        claims.push(tokio::spawn(async move {
            store
                .claim_task(&run, &queued, &format!("replica-{replica}"), 100, 4)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for claim in claims {
        if claim.await.unwrap().is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}
