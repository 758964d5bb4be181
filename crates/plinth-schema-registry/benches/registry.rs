//! The schema registry against its ceiling: `cargo bench -p plinth-schema-registry --bench registry`
//! (or `make bench`). Arguments after `--` narrow the run: `sqlite`, `postgres`, and the case keys
//! `schema_by_id`, `latest_version`, `register_existing`, `compatibility_check`, `payload_validation`.
//!
//! Neither Confluent's registry (JVM) nor Karapace runs on our machines, so the peer is the ceiling. The
//! real registry (`plinth_schema_registry::bind`) is loaded with 1,000 subjects through its REST API,
//! then 32 concurrent HTTP/1.1 keep-alive clients on loopback drive four endpoints, each beside a server
//! built with the same stack (`plinth_runtime::server::ServerBuilder`: same layers, same hyper) whose
//! handler answers the registry's captured response bytes for that endpoint; after a warmup the two
//! take turns in short rounds, so the background load of the shared machine hits both alike. Payload
//! validation through `Registry::validate` runs beside the `jsonschema` crate validating the same
//! documents in a plain loop. Each figure is printed with its ratio and PASS/MISS against the issue's goal, followed by
//! machine-readable `BENCH_RESULT` lines. A miss is reported, never asserted; only a request that fails
//! makes the exit code non-zero. docs/benchmarks.md records the figures.

// The same allocator as the shipped binaries, so the bench measures what ships.
#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use plinth_proto::ids::{SchemaId, Subject};
use plinth_runtime::config::ServerConfig;
use plinth_runtime::server::ServerBuilder;
use plinth_schema_registry::Config;
use plinth_schema_registry::api::rest::CONTENT_TYPE;
use plinth_schema_registry::domain::schema::SchemaType;
use plinth_schema_registry::registry::{Registry, RegistrySettings, SchemaInput, ValidationTarget};
use plinth_schema_registry::store::Store;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SUBJECTS: usize = 1_000;
const CLIENTS: usize = 32;
/// Unrecorded load per server and case, so connections, caches and the allocator settle.
const WARMUP: Duration = Duration::from_secs(3);
/// Recorded load per server and case, split into rounds.
const MEASURED: Duration = Duration::from_secs(5);
/// The ceiling and the registry take turns, one round each, so a change in the background load of the
/// shared machine hits both alike.
const ROUNDS: u32 = 5;
/// Registrations in flight while loading the subjects.
const LOADERS: usize = 4;

const DOCUMENTS: usize = 10_000;
/// One in this many documents is invalid.
const INVALID_EVERY: usize = 10;
/// Documents per `Registry::validate` call.
const VALIDATION_BATCH: usize = 1_000;
const VALIDATION_WARMUP: Duration = Duration::from_secs(1);
const VALIDATION_MEASURED: Duration = Duration::from_secs(3);
/// Longest the Python reference loop runs.
const PYTHON_MEASURED: Duration = Duration::from_secs(3);

/// The PostgreSQL server the tests use (trust auth, database `test`).
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The Python reference: the `jsonschema` package doing the same work per document (parse, validate,
/// error list) for at least one pass and about `argv[3]` seconds; prints documents per second.
const PYTHON_LOOP: &str = r#"
import json, sys, time
from jsonschema import Draft7Validator, FormatChecker
schema = json.load(open(sys.argv[1]))
documents = open(sys.argv[2]).read().splitlines()
validator = Draft7Validator(schema, format_checker=FormatChecker())
budget = float(sys.argv[3])
n = 0
start = time.perf_counter()
while True:
    for text in documents:
        try:
            document = json.loads(text)
        except ValueError as err:
            errors = [("", "", str(err))]
            continue
        errors = [("/".join(map(str, e.absolute_path)), "/".join(map(str, e.absolute_schema_path)), e.message) for e in validator.iter_errors(document)]
    n += len(documents)
    if time.perf_counter() - start >= budget:
        break
print(n / (time.perf_counter() - start))
"#;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|arg| arg == "--bench") {
        // `cargo test --benches` runs bench binaries without `--bench`: a benchmark is not a test.
        println!(
            "registry bench: run it with `cargo bench -p plinth-schema-registry --bench registry`"
        );
        return Ok(());
    }
    let selection = Selection::from_args(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let documents = validation_documents();
    let python = if selection.validation {
        python_reference(&documents)
    } else {
        Err("payload validation not selected".to_owned())
    };
    runtime.block_on(run(&selection, &documents, &python))
}

/// What to run: everything unless the arguments name backends or cases.
struct Selection {
    backends: Vec<Backend>,
    cases: Vec<Case>,
    validation: bool,
}

impl Selection {
    fn from_args(args: &[String]) -> Self {
        let named = |key: &str| args.iter().any(|arg| arg == key);
        let mut backends: Vec<Backend> = Backend::ALL
            .into_iter()
            .filter(|backend| named(backend.key()))
            .collect();
        if backends.is_empty() {
            backends = Backend::ALL.to_vec();
        }
        let mut cases: Vec<Case> = Case::ALL
            .into_iter()
            .filter(|case| named(case.key()))
            .collect();
        let mut validation = named(ValidationReport::KEY);
        if cases.is_empty() && !validation {
            cases = Case::ALL.to_vec();
            validation = true;
        }
        Self {
            backends,
            cases,
            validation,
        }
    }
}

async fn run(
    selection: &Selection,
    documents: &[String],
    python: &Result<f64, String>,
) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for &backend in &selection.backends {
        let database = Database::create(backend).await?;
        let report = bench_backend(backend, &database.url, selection, documents).await;
        database.remove().await;
        reports.push(report?);
    }
    println!();
    for report in &reports {
        report.print_table(python);
    }
    for report in &reports {
        report.print_machine_lines();
    }
    let failed: usize = reports
        .iter()
        .flat_map(|report| &report.cases)
        .map(|case| case.registry.errors + case.ceiling.errors)
        .sum();
    if failed > 0 {
        for case in reports.iter().flat_map(|report| &report.cases) {
            for (side, figures) in [("registry", &case.registry), ("ceiling", &case.ceiling)] {
                if let Some(first) = &figures.first_error {
                    eprintln!(
                        "ERROR {} {side}: {} failed requests, first: {first}",
                        case.case.label(),
                        figures.errors
                    );
                }
            }
        }
        bail!("{failed} requests failed: the figures above are not valid");
    }
    Ok(())
}

// ---- backends -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    fn key(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh database for one run: a SQLite file in its own temp dir, or a PostgreSQL schema.
struct Database {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    PostgresSchema { base_url: String, schema: String },
}

impl Database {
    async fn create(backend: Backend) -> anyhow::Result<Self> {
        let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                Ok(Self {
                    url: format!("sqlite://{}/registry.db", dir.display()),
                    cleanup: Cleanup::Directory(dir),
                })
            }
            Backend::Postgres => {
                use sqlx::Connection as _;
                let base_url = std::env::var("PLINTH_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let mut conn = sqlx::PgConnection::connect(&base_url).await.with_context(|| {
                    format!("PostgreSQL at {base_url} is required by this bench; start it with `make services`")
                })?;
                sqlx::query(&format!("CREATE SCHEMA {name}"))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("cannot create schema {name}"))?;
                conn.close().await.ok();
                let separator = if base_url.contains('?') { '&' } else { '?' };
                Ok(Self {
                    url: format!("{base_url}{separator}options=-c%20search_path%3D{name}"),
                    cleanup: Cleanup::PostgresSchema {
                        base_url,
                        schema: name,
                    },
                })
            }
        }
    }

    async fn remove(self) {
        match self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PostgresSchema { base_url, schema } => {
                use sqlx::Connection as _;
                let dropped = async {
                    let mut conn = sqlx::PgConnection::connect(&base_url).await?;
                    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                        .execute(&mut conn)
                        .await?;
                    conn.close().await
                };
                if let Err(err) = dropped.await {
                    eprintln!("warning: cannot drop PostgreSQL schema {schema}: {err}");
                }
            }
        }
    }
}

// ---- one backend ----------------------------------------------------------------------------------

/// The four REST cases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    SchemaById,
    LatestVersion,
    RegisterExisting,
    CompatibilityCheck,
}

impl Case {
    const ALL: [Case; 4] = [
        Case::SchemaById,
        Case::LatestVersion,
        Case::RegisterExisting,
        Case::CompatibilityCheck,
    ];

    fn label(self) -> &'static str {
        match self {
            Case::SchemaById => "GET /schemas/ids/{id}",
            Case::LatestVersion => "GET /subjects/{s}/versions/latest",
            Case::RegisterExisting => "POST /subjects/{s}/versions (existing)",
            Case::CompatibilityCheck => "POST /compatibility/.../latest",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Case::SchemaById => "schema_by_id",
            Case::LatestVersion => "latest_version",
            Case::RegisterExisting => "register_existing",
            Case::CompatibilityCheck => "compatibility_check",
        }
    }

    /// The issue's goal: the least registry/ceiling throughput ratio and, for cached reads, the p99.
    fn goal(self) -> Goal {
        match self {
            Case::SchemaById | Case::LatestVersion => Goal {
                min_ratio: 0.70,
                max_p99: Some(Duration::from_millis(1)),
            },
            Case::RegisterExisting | Case::CompatibilityCheck => Goal {
                min_ratio: 0.50,
                max_p99: None,
            },
        }
    }

    fn method(self) -> Method {
        match self {
            Case::SchemaById | Case::LatestVersion => Method::GET,
            Case::RegisterExisting | Case::CompatibilityCheck => Method::POST,
        }
    }

    fn path(self, subject: &LoadedSubject) -> String {
        let name = &subject.name;
        match self {
            Case::SchemaById => format!("/schemas/ids/{}", subject.id.value),
            Case::LatestVersion => format!("/subjects/{name}/versions/latest"),
            Case::RegisterExisting => format!("/subjects/{name}/versions"),
            Case::CompatibilityCheck => {
                format!("/compatibility/subjects/{name}/versions/latest")
            }
        }
    }

    fn body(self, subject: &LoadedSubject) -> Bytes {
        match self {
            Case::SchemaById | Case::LatestVersion => Bytes::new(),
            Case::RegisterExisting => subject.register_body.clone(),
            Case::CompatibilityCheck => subject.candidate_body.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Goal {
    min_ratio: f64,
    max_p99: Option<Duration>,
}

impl Goal {
    fn describe(self) -> String {
        match self.max_p99 {
            Some(p99) => format!(">= {:.2}, p99 <= {} us", self.min_ratio, p99.as_micros()),
            None => format!(">= {:.2}", self.min_ratio),
        }
    }
}

struct LoadedSubject {
    name: String,
    id: SchemaId,
    register_body: Bytes,
    candidate_body: Bytes,
}

/// What one endpoint answers, as captured from the registry, and the subjects whose answer has that
/// exact length (so the ceiling's fixed body matches every answer in the rotation byte for byte).
struct Captured {
    content_type: HeaderValue,
    body: Bytes,
    rotation: Vec<usize>,
}

struct CaseReport {
    case: Case,
    body_bytes: usize,
    rotation: usize,
    registry: Figures,
    ceiling: Figures,
}

impl CaseReport {
    fn ratio(&self) -> f64 {
        self.registry.throughput / self.ceiling.throughput
    }

    fn met(&self) -> bool {
        let goal = self.case.goal();
        self.ratio() >= goal.min_ratio && goal.max_p99.is_none_or(|max| self.registry.p99 <= max)
    }
}

struct ValidationReport {
    registry_per_second: f64,
    plain_per_second: f64,
    invalid_registry: usize,
    invalid_plain: usize,
}

impl ValidationReport {
    const GOAL: f64 = 0.90;
    const KEY: &str = "payload_validation";

    fn ratio(&self) -> f64 {
        self.registry_per_second / self.plain_per_second
    }
}

struct BackendReport {
    backend: Backend,
    load_seconds: f64,
    load_average: String,
    cases: Vec<CaseReport>,
    validation: Option<ValidationReport>,
}

async fn bench_backend(
    backend: Backend,
    url: &str,
    selection: &Selection,
    documents: &[String],
) -> anyhow::Result<BackendReport> {
    eprintln!("== {}: starting the registry", backend.title());
    let mut config = Config {
        server: loopback_server_config(),
        ..Config::default()
    };
    config.database.url = url.to_owned();
    let bound = plinth_schema_registry::bind(&config)
        .await
        .context("cannot start the registry")?;
    let registry = Running::spawn(bound.http_addr(), move |stop| async move {
        bound.serve(stop).await.map_err(anyhow::Error::from)
    });

    let client = http_client();
    let started = Instant::now();
    let subjects = load_subjects(&client, registry.addr).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!("   loaded {SUBJECTS} subjects in {load_seconds:.1} s");
    let mut captured = HashMap::new();
    for case in Case::ALL {
        captured.insert(
            case.key(),
            capture(&client, registry.addr, case, &subjects).await?,
        );
    }
    drop(client);
    let ceiling = start_ceiling(&captured).await?;

    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned());
    let mut cases = Vec::new();
    for &case in &selection.cases {
        let Some(captured) = captured.get(case.key()) else {
            bail!("no capture for {}", case.label());
        };
        let requests = |addr| prepared_requests(addr, case, &subjects, &captured.rotation);
        let mut ceiling_load = Load::new(requests(ceiling.addr)?);
        let mut registry_load = Load::new(requests(registry.addr)?);
        eprintln!("   {}: warmup", case.label());
        ceiling_load.run(WARMUP, false).await?;
        registry_load.run(WARMUP, false).await?;
        for round in 1..=ROUNDS {
            eprintln!("   {}: round {round} of {ROUNDS}", case.label());
            ceiling_load.run(MEASURED / ROUNDS, true).await?;
            registry_load.run(MEASURED / ROUNDS, true).await?;
        }
        cases.push(CaseReport {
            case,
            body_bytes: captured.body.len(),
            rotation: captured.rotation.len(),
            registry: registry_load.figures(),
            ceiling: ceiling_load.figures(),
        });
    }
    ceiling.stop().await?;
    registry.stop().await?;

    let validation = if selection.validation {
        eprintln!("   payload validation");
        Some(bench_validation(url, documents).await?)
    } else {
        None
    };
    Ok(BackendReport {
        backend,
        load_seconds,
        load_average,
        cases,
        validation,
    })
}

fn loopback_server_config() -> ServerConfig {
    let mut server = ServerConfig::with_ports(0, 0);
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    server.grpc.listen = loopback;
    server.http.listen = loopback;
    server.shutdown_grace_period = Duration::from_secs(2);
    server
}

/// A server serving in a spawned task until `stop`.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn spawn<F>(
        addr: SocketAddr,
        serve: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    ) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Box::pin(async move {
            let _ = stopped.await;
        })));
        Self { addr, stop, task }
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the server task panicked")?
    }
}

// ---- loading and capturing ----------------------------------------------------------------------

/// A realistic order event schema: ten properties (nested objects, arrays, enums, formats, patterns),
/// closed content model, made distinct per subject by its title and one property name. Every index has
/// four digits so every schema has the same length.
fn schema_text(index: usize, with_channel: bool) -> String {
    let channel = if with_channel {
        r#","channel":{"type":"string","enum":["web","store","phone"]}"#
    } else {
        ""
    };
    format!(
        r#"{{"$schema":"http://json-schema.org/draft-07/schema#","title":"Order{index:04}","type":"object","additionalProperties":false,"properties":{{"order_id":{{"type":"string","pattern":"^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$"}},"customer_id":{{"type":"integer","minimum":1}},"created_at":{{"type":"string","format":"date-time"}},"amount":{{"type":"number","minimum":0}},"currency":{{"type":"string","enum":["EUR","USD","GBP","JPY"]}},"status":{{"type":"string","enum":["pending","paid","shipped","cancelled"]}},"email":{{"type":"string","format":"email"}},"items":{{"type":"array","minItems":1,"items":{{"type":"object","properties":{{"sku":{{"type":"string","pattern":"^[A-Z]{{3}}-[0-9]{{4}}$"}},"quantity":{{"type":"integer","minimum":1}},"unit_price":{{"type":"number","minimum":0}}}},"required":["sku","quantity"]}}}},"shipping_address":{{"type":"object","properties":{{"street":{{"type":"string"}},"city":{{"type":"string"}},"postal_code":{{"type":"string","maxLength":10}},"country":{{"type":"string","minLength":2,"maxLength":2}}}},"required":["city","country"]}},"note_{index:04}":{{"type":["string","null"],"maxLength":500}}{channel}}},"required":["order_id","customer_id","created_at","amount","currency","status","items"]}}"#
    )
}

fn schema_body(text: &str) -> Bytes {
    Bytes::from(json!({"schema": text, "schemaType": "JSON"}).to_string())
}

async fn load_subjects(
    client: &HttpClient,
    addr: SocketAddr,
) -> anyhow::Result<Vec<LoadedSubject>> {
    let mut loaders = tokio::task::JoinSet::new();
    for loader in 0..LOADERS {
        let client = client.clone();
        loaders.spawn(async move {
            let mut loaded = Vec::new();
            for index in (loader..SUBJECTS).step_by(LOADERS) {
                let name = format!("bench-{index:04}-value");
                let register_body = schema_body(&schema_text(index, false));
                let uri = format!("http://{addr}/subjects/{name}/versions");
                let (status, _, body) =
                    send(&client, Method::POST, &uri, register_body.clone()).await?;
                if status != StatusCode::OK {
                    bail!(
                        "registering {name}: {status} {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                let answer: Value = serde_json::from_slice(&body)?;
                let id = answer["id"]
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| anyhow!("registering {name}: no id in {answer}"))?;
                loaded.push((
                    index,
                    LoadedSubject {
                        name,
                        id: SchemaId::new(id),
                        register_body,
                        candidate_body: schema_body(&schema_text(index, true)),
                    },
                ));
            }
            anyhow::Ok(loaded)
        });
    }
    let mut subjects = Vec::with_capacity(SUBJECTS);
    while let Some(joined) = loaders.join_next().await {
        subjects.extend(joined.context("a loader panicked")??);
    }
    subjects.sort_by_key(|(index, _)| *index);
    Ok(subjects.into_iter().map(|(_, subject)| subject).collect())
}

/// Asks the registry once per subject and keeps the most common answer length.
async fn capture(
    client: &HttpClient,
    addr: SocketAddr,
    case: Case,
    subjects: &[LoadedSubject],
) -> anyhow::Result<Captured> {
    let mut answers = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let uri = format!("http://{addr}{}", case.path(subject));
        let (status, content_type, body) =
            send(client, case.method(), &uri, case.body(subject)).await?;
        if status != StatusCode::OK {
            bail!(
                "{} on {}: {status} {}",
                case.label(),
                subject.name,
                String::from_utf8_lossy(&body)
            );
        }
        let content_type =
            content_type.ok_or_else(|| anyhow!("{}: no content type", case.label()))?;
        answers.push((content_type, body));
    }
    let mut lengths: HashMap<usize, usize> = HashMap::new();
    for (_, body) in &answers {
        *lengths.entry(body.len()).or_default() += 1;
    }
    let modal = lengths
        .into_iter()
        .max_by_key(|&(length, count)| (count, length))
        .map(|(length, _)| length)
        .ok_or_else(|| anyhow!("no subjects"))?;
    let rotation: Vec<usize> = (0..answers.len())
        .filter(|&index| answers[index].1.len() == modal)
        .collect();
    let first = rotation
        .first()
        .copied()
        .ok_or_else(|| anyhow!("empty rotation"))?;
    let (content_type, body) = answers.swap_remove(first);
    Ok(Captured {
        content_type,
        body,
        rotation,
    })
}

/// The ceiling: the same `ServerBuilder` stack and the same route shapes, each handler answering a
/// fixed body (the registry's own bytes and content type). POST handlers read the request body, as any
/// server must.
async fn start_ceiling(captured: &HashMap<&str, Captured>) -> anyhow::Result<Running> {
    let fixed = |case: Case| -> anyhow::Result<(HeaderValue, Bytes)> {
        let captured = captured
            .get(case.key())
            .ok_or_else(|| anyhow!("no capture for {}", case.label()))?;
        Ok((captured.content_type.clone(), captured.body.clone()))
    };
    let answer = |(content_type, body): (HeaderValue, Bytes)| {
        move || {
            let (content_type, body) = (content_type.clone(), body.clone());
            async move { ([(header::CONTENT_TYPE, content_type)], body) }
        }
    };
    let answer_post = |(content_type, body): (HeaderValue, Bytes)| {
        move |_request: Bytes| {
            let (content_type, body) = (content_type.clone(), body.clone());
            async move { ([(header::CONTENT_TYPE, content_type)], body) }
        }
    };
    let router = Router::new()
        .route("/schemas/ids/{id}", get(answer(fixed(Case::SchemaById)?)))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(answer(fixed(Case::LatestVersion)?)),
        )
        .route(
            "/subjects/{subject}/versions",
            post(answer_post(fixed(Case::RegisterExisting)?)),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(answer_post(fixed(Case::CompatibilityCheck)?)),
        );
    let server = ServerBuilder::new("bench-ceiling", loopback_server_config())
        .http_router(router)
        .bind()
        .await
        .context("cannot start the ceiling server")?;
    Ok(Running::spawn(server.http_addr(), move |stop| async move {
        server.serve(stop).await.map_err(anyhow::Error::from)
    }))
}

// ---- load generator -----------------------------------------------------------------------------

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CLIENTS * 2)
        .build(connector)
}

async fn send(
    client: &HttpClient,
    method: Method,
    uri: &str,
    body: Bytes,
) -> anyhow::Result<(StatusCode, Option<HeaderValue>, Bytes)> {
    let mut request = Request::builder().method(method).uri(uri);
    if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, CONTENT_TYPE);
    }
    let response = client
        .request(request.body(Full::new(body))?)
        .await
        .with_context(|| format!("request to {uri}"))?;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, content_type, body))
}

/// One request, built before timing.
#[derive(Clone)]
struct Prepared {
    method: Method,
    uri: Uri,
    body: Bytes,
}

fn prepared_requests(
    addr: SocketAddr,
    case: Case,
    subjects: &[LoadedSubject],
    rotation: &[usize],
) -> anyhow::Result<Arc<Vec<Prepared>>> {
    let requests = rotation
        .iter()
        .map(|&index| {
            let subject = &subjects[index];
            Ok(Prepared {
                method: case.method(),
                uri: format!("http://{addr}{}", case.path(subject)).parse()?,
                body: case.body(subject),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Arc::new(requests))
}

/// Throughput and latency of one case against one server.
#[derive(Debug)]
struct Figures {
    requests: usize,
    throughput: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
    first_error: Option<String>,
}

/// One server under load in one case: a keep-alive connection pool, the prepared requests, and what
/// the recorded runs saw.
struct Load {
    client: HttpClient,
    requests: Arc<Vec<Prepared>>,
    latencies: Vec<u64>,
    recorded: Duration,
    errors: usize,
    first_error: Option<String>,
}

impl Load {
    fn new(requests: Arc<Vec<Prepared>>) -> Self {
        Self {
            client: http_client(),
            requests,
            latencies: Vec::new(),
            recorded: Duration::ZERO,
            errors: 0,
            first_error: None,
        }
    }

    /// Runs `CLIENTS` closed-loop clients for `duration`, recording every latency when `record`.
    /// Errors are counted either way.
    async fn run(&mut self, duration: Duration, record: bool) -> anyhow::Result<()> {
        let end = Instant::now() + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..CLIENTS {
            let client = self.client.clone();
            let requests = self.requests.clone();
            tasks.spawn(async move {
                let mut latencies: Vec<u64> = Vec::with_capacity(1 << 14);
                let (mut errors, mut first_error) = (0_usize, None);
                let mut next = task * requests.len() / CLIENTS;
                loop {
                    let started = Instant::now();
                    if started >= end {
                        break;
                    }
                    let prepared = &requests[next % requests.len()];
                    next += 1;
                    match one_request(&client, prepared).await {
                        Ok(()) if record => latencies
                            .push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)),
                        Ok(()) => {}
                        Err(err) => {
                            errors += 1;
                            first_error.get_or_insert(err);
                        }
                    }
                }
                (latencies, errors, first_error)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (latencies, errors, first_error) = joined.context("a client task panicked")?;
            self.latencies.extend(latencies);
            self.errors += errors;
            if self.first_error.is_none() {
                self.first_error = first_error;
            }
        }
        if record {
            self.recorded += duration;
        }
        Ok(())
    }

    fn figures(mut self) -> Figures {
        self.latencies.sort_unstable();
        Figures {
            requests: self.latencies.len(),
            throughput: self.latencies.len() as f64 / self.recorded.as_secs_f64(),
            p50: percentile(&self.latencies, 0.50),
            p99: percentile(&self.latencies, 0.99),
            errors: self.errors,
            first_error: self.first_error,
        }
    }
}

async fn one_request(client: &HttpClient, prepared: &Prepared) -> Result<(), String> {
    let mut request = Request::builder()
        .method(prepared.method.clone())
        .uri(prepared.uri.clone());
    if !prepared.body.is_empty() {
        request = request.header(header::CONTENT_TYPE, CONTENT_TYPE);
    }
    let request = request
        .body(Full::new(prepared.body.clone()))
        .map_err(|err| err.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| err.to_string())?
        .to_bytes();
    if status == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

fn percentile(sorted_nanos: &[u64], quantile: f64) -> Duration {
    if sorted_nanos.is_empty() {
        return Duration::ZERO;
    }
    let rank = (quantile * sorted_nanos.len() as f64).ceil() as usize;
    Duration::from_nanos(sorted_nanos[rank.clamp(1, sorted_nanos.len()) - 1])
}

// ---- payload validation -------------------------------------------------------------------------

/// `DOCUMENTS` order events for `schema_text(0, false)`, deterministic; one in `INVALID_EVERY` breaks
/// a rule (a type, a required property, an enum, a pattern, a format, the closed content model).
fn validation_documents() -> Vec<String> {
    let mut seed: u64 = 0x5eed_1e55_c0ff_ee00;
    let mut next = move || {
        // SplitMix64: deterministic, no dependency.
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = seed;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    };
    let currencies = ["EUR", "USD", "GBP", "JPY"];
    let statuses = ["pending", "paid", "shipped", "cancelled"];
    (0..DOCUMENTS)
        .map(|index| {
            let random = next();
            let n_items = 1 + (random % 4) as usize;
            let items: Vec<Value> = (0..n_items)
                .map(|item| {
                    json!({
                        "sku": format!("ABC-{:04}", (random >> (item * 8)) % 10_000),
                        "quantity": 1 + (random >> 16) % 5,
                        "unit_price": ((random >> 24) % 10_000) as f64 / 100.0,
                    })
                })
                .collect();
            let mut document = json!({
                "order_id": format!("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", random as u32, (random >> 32) as u16, (random >> 48) as u16, index as u16, random & 0xffff_ffff_ffff),
                "customer_id": 1 + random % 100_000,
                "created_at": format!("2025-{:02}-{:02}T{:02}:{:02}:{:02}Z", 1 + random % 12, 1 + (random >> 8) % 28, (random >> 16) % 24, (random >> 24) % 60, (random >> 32) % 60),
                "amount": ((random >> 40) % 100_000) as f64 / 100.0,
                "currency": currencies[(random >> 4) as usize % currencies.len()],
                "status": statuses[(random >> 6) as usize % statuses.len()],
                "email": format!("customer{}@example.com", random % 100_000),
                "items": items,
                "shipping_address": {"street": "1 Main Street", "city": "Lyon", "postal_code": "69001", "country": "FR"},
                "note_0000": if random % 3 == 0 { Value::Null } else { json!("leave at the door") },
            });
            if index % INVALID_EVERY == INVALID_EVERY - 1 {
                match (index / INVALID_EVERY) % 6 {
                    0 => document["customer_id"] = json!("not a number"),
                    1 => {
                        if let Some(object) = document.as_object_mut() {
                            object.remove("currency");
                        }
                    }
                    2 => document["status"] = json!("lost"),
                    3 => document["items"][0]["sku"] = json!("abc-12"),
                    4 => document["created_at"] = json!("yesterday"),
                    _ => document["coupon"] = json!("SAVE10"),
                }
            }
            document.to_string()
        })
        .collect()
}

async fn bench_validation(url: &str, documents: &[String]) -> anyhow::Result<ValidationReport> {
    let schema = schema_text(0, false);
    let store = Store::connect(url, 4, Duration::from_secs(5))
        .await
        .context("cannot open the store for validation")?;
    let registry = Registry::new(store, RegistrySettings::default());
    let view = registry
        .register(
            &Subject::new("bench-validation-value"),
            SchemaInput {
                text: schema.clone(),
                schema_type: SchemaType::Json,
                references: Vec::new(),
            },
            None,
            None,
        )
        .await?;
    let target = ValidationTarget::Id(view.schema.id);

    let mut invalid_registry = 0;
    let warm_until = Instant::now() + VALIDATION_WARMUP;
    while Instant::now() < warm_until {
        invalid_registry = registry_pass(&registry, &target, documents).await?;
    }
    let started = Instant::now();
    let mut passes = 0;
    while started.elapsed() < VALIDATION_MEASURED {
        registry_pass(&registry, &target, documents).await?;
        passes += 1;
    }
    let registry_per_second = (passes * documents.len()) as f64 / started.elapsed().as_secs_f64();
    registry.store().close().await;

    let schema_value: Value = serde_json::from_str(&schema)?;
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema_value)
        .map_err(|err| anyhow!("jsonschema cannot compile the schema: {err}"))?;
    let pass = || {
        let mut invalid = 0;
        for text in documents {
            let errors: Vec<(String, String, String)> = match serde_json::from_str::<Value>(text) {
                Ok(document) => validator
                    .iter_errors(&document)
                    .map(|err| {
                        (
                            err.instance_path().to_string(),
                            err.schema_path().to_string(),
                            err.to_string(),
                        )
                    })
                    .collect(),
                Err(err) => vec![(String::new(), String::new(), err.to_string())],
            };
            invalid += usize::from(!errors.is_empty());
            std::hint::black_box(errors);
        }
        invalid
    };
    let mut invalid_plain = 0;
    let warm_until = Instant::now() + VALIDATION_WARMUP;
    while Instant::now() < warm_until {
        invalid_plain = pass();
    }
    let started = Instant::now();
    let mut passes = 0;
    while started.elapsed() < VALIDATION_MEASURED {
        pass();
        passes += 1;
    }
    let plain_per_second = (passes * documents.len()) as f64 / started.elapsed().as_secs_f64();
    Ok(ValidationReport {
        registry_per_second,
        plain_per_second,
        invalid_registry,
        invalid_plain,
    })
}

/// One pass of `Registry::validate` over the documents in batches; returns how many were invalid.
async fn registry_pass(
    registry: &Registry,
    target: &ValidationTarget,
    documents: &[String],
) -> anyhow::Result<usize> {
    let mut invalid = 0;
    for batch in documents.chunks(VALIDATION_BATCH) {
        let (_, results) = registry.validate(target.clone(), batch).await?;
        invalid += results.iter().filter(|errors| !errors.is_empty()).count();
        std::hint::black_box(results);
    }
    Ok(invalid)
}

/// Python's `jsonschema` over the same documents, a reference line only (not a goal). `None` with the
/// reason when the venv is missing.
fn python_reference(documents: &[String]) -> Result<f64, String> {
    let venv = std::env::var_os("PLINTH_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/plinth/tools/venv"))
        });
    let Some(python) = venv.map(|venv| venv.join("bin/python")) else {
        return Err("no PLINTH_VENV or HOME".to_owned());
    };
    if !python.exists() {
        return Err(format!(
            "{} not found; `make tools` installs it",
            python.display()
        ));
    }
    let dir = std::env::temp_dir().join(format!("bench_py_{}", uuid::Uuid::now_v7().simple()));
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("schema.json"), schema_text(0, false)))
        .and_then(|()| std::fs::write(dir.join("documents.jsonl"), documents.join("\n")));
    if let Err(err) = written {
        return Err(format!("cannot write the inputs: {err}"));
    }
    eprintln!("== Python jsonschema reference");
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(PYTHON_LOOP)
        .arg(dir.join("schema.json"))
        .arg(dir.join("documents.jsonl"))
        .arg(PYTHON_MEASURED.as_secs_f64().to_string())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let output = output.map_err(|err| format!("cannot run {}: {err}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "python failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse::<f64>()
        .map_err(|err| format!("unexpected python output: {err}"))
}

// ---- output -------------------------------------------------------------------------------------

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

impl BackendReport {
    fn print_table(&self, python: &Result<f64, String>) {
        println!(
            "Schema registry vs ceiling on {}: {SUBJECTS} subjects (loaded in {:.1} s), {CLIENTS} clients, \
             HTTP/1.1 keep-alive on loopback, per case and server {} s warmup + {} s measured in {ROUNDS} alternating rounds, {} cores, load average before the cases {}",
            self.backend.title(),
            self.load_seconds,
            WARMUP.as_secs(),
            MEASURED.as_secs(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            self.load_average,
        );
        println!(
            "{:<40} {:>6} | {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>5} | {:<22} | verdict",
            "case",
            "bytes",
            "reg req/s",
            "p50 us",
            "p99 us",
            "ceil req/s",
            "p50 us",
            "p99 us",
            "ratio",
            "goal"
        );
        for case in &self.cases {
            println!(
                "{:<40} {:>6} | {:>10.0} {:>8.0} {:>8.0} | {:>10.0} {:>8.0} {:>8.0} | {:>5.2} | {:<22} | {}{}",
                case.case.label(),
                case.body_bytes,
                case.registry.throughput,
                micros(case.registry.p50),
                micros(case.registry.p99),
                case.ceiling.throughput,
                micros(case.ceiling.p50),
                micros(case.ceiling.p99),
                case.ratio(),
                case.case.goal().describe(),
                verdict(case.met()),
                if case.registry.errors + case.ceiling.errors > 0 {
                    " (REQUESTS FAILED)"
                } else {
                    ""
                },
            );
        }
        if let Some(validation) = &self.validation {
            validation.print_row(python);
        }
        println!(
            "  rotation: {} (of {SUBJECTS}) subjects per case whose answer has exactly the ceiling's length",
            self.cases
                .iter()
                .map(|case| format!("{} {}", case.case.key(), case.rotation))
                .collect::<Vec<_>>()
                .join(", "),
        );
        println!();
    }

    fn print_machine_lines(&self) {
        for case in &self.cases {
            let goal = case.case.goal();
            let line = json!({
                "bench": "schema-registry",
                "backend": self.backend.key(),
                "case": case.case.key(),
                "body_bytes": case.body_bytes,
                "registry_rps": case.registry.throughput.round(),
                "registry_p50_us": micros(case.registry.p50).round(),
                "registry_p99_us": micros(case.registry.p99).round(),
                "registry_requests": case.registry.requests,
                "registry_errors": case.registry.errors,
                "ceiling_rps": case.ceiling.throughput.round(),
                "ceiling_p50_us": micros(case.ceiling.p50).round(),
                "ceiling_p99_us": micros(case.ceiling.p99).round(),
                "ceiling_errors": case.ceiling.errors,
                "ratio": (case.ratio() * 1000.0).round() / 1000.0,
                "goal_ratio": goal.min_ratio,
                "goal_p99_us": goal.max_p99.map(|p99| p99.as_micros()),
                "verdict": verdict(case.met()),
            });
            println!("BENCH_RESULT {line}");
        }
        let Some(validation) = &self.validation else {
            return;
        };
        let line = json!({
            "bench": "schema-registry",
            "backend": self.backend.key(),
            "case": ValidationReport::KEY,
            "registry_records_per_s": validation.registry_per_second.round(),
            "jsonschema_records_per_s": validation.plain_per_second.round(),
            "ratio": (validation.ratio() * 1000.0).round() / 1000.0,
            "goal_ratio": ValidationReport::GOAL,
            "verdict": verdict(validation.ratio() >= ValidationReport::GOAL),
        });
        println!("BENCH_RESULT {line}");
    }
}

impl ValidationReport {
    fn print_row(&self, python: &Result<f64, String>) {
        println!(
            "{:<40} {:>6} | {:>10.0} {:>17} | {:>10.0} {:>17} | {:>5.2} | {:<22} | {}",
            "payload validation (records/s)",
            "",
            self.registry_per_second,
            "Registry::validate",
            self.plain_per_second,
            "jsonschema loop",
            self.ratio(),
            format!(">= {:.2}", Self::GOAL),
            verdict(self.ratio() >= Self::GOAL),
        );
        if self.invalid_registry != self.invalid_plain {
            println!(
                "WARNING: Registry::validate found {} invalid documents, the plain loop {}",
                self.invalid_registry, self.invalid_plain
            );
        }
        match python {
            Ok(rate) => println!(
                "{:<40} {:>6} | {:>10.0} records/s (Python jsonschema, reference only; registry/python = {:.1}x)",
                "  reference: Python jsonschema",
                "",
                rate,
                self.registry_per_second / rate
            ),
            Err(reason) => println!("  reference: Python jsonschema skipped: {reason}"),
        }
        println!(
            "  documents: {DOCUMENTS}, {} invalid, validated in batches of {VALIDATION_BATCH}",
            self.invalid_registry
        );
    }
}
