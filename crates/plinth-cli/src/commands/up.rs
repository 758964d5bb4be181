//! `plinth up`: every service built so far in one process, on embedded defaults and the default ports,
//! with state under `--data-dir` (default `./.plinth`), until Ctrl-C: the schema registry, a local
//! Kafka-protocol broker (tansu, a child process), the data hub gateway, the feature store, model serving
//! and the orchestrator (local-process executor).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use plinth_datahub::local_broker::{self, LocalBroker};
use plinth_runtime::config::{LogFormat, TelemetryConfig};

/// `plinth up` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  plinth up --demo\n  plinth up --kafka-bootstrap kafka.internal:9092 --data-dir /var/lib/plinth\n\n\
                  The local broker is the tansu binary installed by `make tools` (`deploy/scripts/tools.sh kafka`); \
                  set PLINTH_TANSU to use another one."
)]
pub struct UpArgs {
    /// Where embedded state (SQLite files, the local lake) lives.
    #[arg(long, default_value = ".plinth", env = "PLINTH_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address the listeners bind (127.0.0.1 keeps the platform local to this machine).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Schema registry gRPC port.
    #[arg(long, default_value_t = plinth_schema_registry::config::DEFAULT_GRPC_PORT)]
    pub registry_grpc_port: u16,
    /// Schema registry HTTP (Confluent REST) port.
    #[arg(long, default_value_t = plinth_schema_registry::config::DEFAULT_HTTP_PORT)]
    pub registry_http_port: u16,
    /// Port of the local Kafka-protocol broker (0: any free port).
    #[arg(long, default_value_t = 9092, conflicts_with = "kafka_bootstrap")]
    pub kafka_port: u16,
    /// Use this Kafka cluster (HOST:PORT[,HOST:PORT...]) instead of starting a local broker.
    #[arg(long, env = "PLINTH_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,
    /// Data hub gRPC port (Arrow Flight too).
    #[arg(long, default_value_t = plinth_datahub::config::DEFAULT_GRPC_PORT)]
    pub datahub_grpc_port: u16,
    /// Data hub HTTP port (/metrics, /healthz, /readyz).
    #[arg(long, default_value_t = plinth_datahub::config::DEFAULT_HTTP_PORT)]
    pub datahub_http_port: u16,
    /// Feature store gRPC port (Arrow Flight too).
    #[arg(long, default_value_t = plinth_feature_store::config::DEFAULT_GRPC_PORT)]
    pub feature_store_grpc_port: u16,
    /// Feature store HTTP port (Feast's /get-online-features and /push, /metrics).
    #[arg(long, default_value_t = plinth_feature_store::config::DEFAULT_HTTP_PORT)]
    pub feature_store_http_port: u16,
    /// Orchestrator gRPC port.
    #[arg(long, default_value_t = plinth_orchestrator::config::DEFAULT_GRPC_PORT)]
    pub orchestrator_grpc_port: u16,
    /// Orchestrator HTTP port (/metrics, /healthz, /readyz).
    #[arg(long, default_value_t = plinth_orchestrator::config::DEFAULT_HTTP_PORT)]
    pub orchestrator_http_port: u16,
    /// Model serving gRPC port (Open Inference Protocol V2 and plinth.serving.v1).
    #[arg(long, default_value_t = plinth_serving::config::DEFAULT_GRPC_PORT)]
    pub serving_grpc_port: u16,
    /// Model serving HTTP port (the protocol's REST form /v2, /metrics).
    #[arg(long, default_value_t = plinth_serving::config::DEFAULT_HTTP_PORT)]
    pub serving_http_port: u16,
    /// Log level (tracing filter directive); default `info`, or `warn` with `--demo` so that the demo's
    /// steps stay readable.
    #[arg(long, env = "PLINTH_LOG")]
    pub log_level: Option<String>,
    /// After start, run the platform journey and print each step as the `plinth` command it is: a model
    /// project from `plinth init`, events produced and landed in the lake, features applied, a
    /// training set built, a model trained by a pipeline and deployed, predictions by key (needs the
    /// tools venv's scikit-learn: `make tools`).
    #[arg(long)]
    pub demo: bool,
}

/// How long each service gets to drain on Ctrl-C.
const GRACE_PERIOD: Duration = Duration::from_secs(5);

/// Runs the platform until Ctrl-C or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let data_dir = std::path::absolute(&args.data_dir).with_context(|| {
        format!(
            "cannot resolve the data directory {}",
            args.data_dir.display()
        )
    })?;
    let telemetry = TelemetryConfig {
        log_level: args
            .log_level
            .clone()
            .unwrap_or_else(|| if args.demo { "warn" } else { "info" }.to_owned()),
        log_format: LogFormat::Text,
        ..TelemetryConfig::default()
    };
    let _telemetry = plinth_runtime::telemetry::init("plinth", &telemetry)?;

    let mut registry_config = plinth_schema_registry::Config::default();
    registry_config.server.grpc.listen = SocketAddr::new(args.bind, args.registry_grpc_port);
    registry_config.server.http.listen = SocketAddr::new(args.bind, args.registry_http_port);
    registry_config.server.shutdown_grace_period = GRACE_PERIOD;
    registry_config.database.url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("schema-registry.db").display()
    );
    let registry = plinth_schema_registry::bind(&registry_config)
        .await
        .context(
            "the schema registry cannot start (is another `plinth up` running on these ports?)",
        )?;
    let registry_grpc = registry.grpc_addr();
    let registry_http = registry.http_addr();

    // The broker is a child process: it is killed when `broker` is dropped, on every path out of here.
    let (broker, bootstrap_servers) = match &args.kafka_bootstrap {
        Some(bootstrap) => (None, bootstrap.clone()),
        None => {
            let broker = start_broker(&args, &data_dir).await?;
            let bootstrap = broker.bootstrap_servers();
            (Some(broker), bootstrap)
        }
    };

    let datahub_config = datahub_config(&args, &data_dir, &bootstrap_servers, registry_grpc)?;
    let datahub = plinth_datahub::bind(&datahub_config).await.context(
        "the data hub cannot start (is another `plinth up` running on these ports? is Kafka reachable?)",
    )?;
    let datahub_grpc = datahub.grpc_addr();
    let datahub_http = datahub.http_addr();

    let feature_store_config =
        feature_store_config(&args, &data_dir, &datahub_config, datahub_grpc)?;
    let feature_store = plinth_feature_store::bind(&feature_store_config)
        .await
        .context(
            "the feature store cannot start (is another `plinth up` running on these ports?)",
        )?;
    let feature_store_grpc = feature_store.grpc_addr();
    let feature_store_http = feature_store.http_addr();

    let serving_config = serving_config(
        &args,
        &data_dir,
        [registry_grpc, datahub_grpc, feature_store_grpc],
    )?;
    let serving = plinth_serving::bind(&serving_config).await.context(
        "model serving cannot start (is another `plinth up` running on these ports? is ONNX Runtime installed: `make tools`?)",
    )?;
    let serving_grpc = serving.grpc_addr();
    let serving_http = serving.http_addr();

    let orchestrator_config = orchestrator_config(
        &args,
        &data_dir,
        &feature_store_config,
        [
            registry_grpc,
            datahub_grpc,
            feature_store_grpc,
            serving_grpc,
        ],
    )?;
    let orchestrator = plinth_orchestrator::bind(&orchestrator_config)
        .await
        .context(
            "the orchestrator cannot start (is another `plinth up` running on these ports?)",
        )?;
    let orchestrator_grpc = orchestrator.grpc_addr();
    let orchestrator_http = orchestrator.http_addr();

    // Printed at start, and again after the demo.
    let mut listening = String::new();
    let _ = writeln!(listening, "Plinth is up (state in {}):", data_dir.display());
    let _ = writeln!(
        listening,
        "  schema-registry  gRPC http://{registry_grpc}   REST http://{registry_http}  (Confluent API; /metrics)"
    );
    let _ = writeln!(
        listening,
        "  datahub          gRPC http://{datahub_grpc}   HTTP http://{datahub_http}  (Arrow Flight on gRPC; /metrics)"
    );
    let _ = writeln!(
        listening,
        "  feature-store    gRPC http://{feature_store_grpc}   HTTP http://{feature_store_http}  (Feast /get-online-features; embedded online store)"
    );
    let _ = writeln!(
        listening,
        "  model-serving    gRPC http://{serving_grpc}   HTTP http://{serving_http}  (Open Inference Protocol V2 + PredictByKey; models in {})",
        serving_config.models.root
    );
    let _ = writeln!(
        listening,
        "  orchestrator     gRPC http://{orchestrator_grpc}   HTTP http://{orchestrator_http}  (pipelines; local-process executor; logs in {})",
        orchestrator_config.logs.root
    );
    match &broker {
        Some(broker) => {
            let storage = broker.storage();
            let note = if storage.is_persistent() {
                "topics survive a restart"
            } else {
                "in memory: topics and records are lost when Plinth stops"
            };
            let _ = writeln!(
                listening,
                "  kafka            {bootstrap_servers}  (local tansu broker; {storage}: {note})"
            );
        }
        None => {
            let _ = writeln!(
                listening,
                "  kafka            {bootstrap_servers}  (external cluster)"
            );
        }
    }
    print!("{listening}");
    if !args.demo {
        println!();
        println!("Next: register a schema, bind a topic to it, produce and read");
        println!(
            "  echo '{{\"type\":\"object\",\"properties\":{{\"id\":{{\"type\":\"integer\"}}}}}}' > /tmp/orders.json"
        );
        println!("  plinth schema register orders-value --file /tmp/orders.json");
        println!("  plinth topic create orders --value-subject orders-value");
        println!("  echo '{{\"id\":1}}' | plinth produce orders");
        println!("  plinth consume orders --group me --from earliest --max 1");
        println!("  curl http://{registry_http}/subjects");
        println!("Press Ctrl-C to stop.");
    }

    let (stop_orchestrator, orchestrator_stop) = tokio::sync::watch::channel(false);
    let (stop_serving, serving_stop) = tokio::sync::watch::channel(false);
    let (stop_feature_store, feature_store_stop) = tokio::sync::watch::channel(false);
    let (stop_datahub, datahub_stop) = tokio::sync::watch::channel(false);
    let (stop_registry, registry_stop) = tokio::sync::watch::channel(false);
    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let registry_task = tokio::spawn(registry.serve(shutdown(registry_stop)));
    let datahub_task = tokio::spawn(datahub.serve(shutdown(datahub_stop)));
    let feature_store_task = tokio::spawn(feature_store.serve(shutdown(feature_store_stop)));
    let serving_task = tokio::spawn(serving.serve(shutdown(serving_stop)));
    let orchestrator_task = tokio::spawn(orchestrator.serve(shutdown(orchestrator_stop)));

    if args.demo {
        let url = |addr: SocketAddr| -> anyhow::Result<url::Url> {
            format!("http://{addr}")
                .parse()
                .context("a service address is not a URL")
        };
        let endpoints = crate::journey::Endpoints {
            registry: url(registry_grpc)?,
            datahub: url(datahub_grpc)?,
            feature_store: url(feature_store_grpc)?,
            orchestrator: url(orchestrator_grpc)?,
            serving: url(serving_grpc)?,
        };
        match crate::journey::run(&endpoints, &crate::journey::Options::demo(&data_dir)).await {
            Ok(outcome) => println!(
                "\nDemo done: model {} version {} serves predictions by customer_id; its project is in {}.\nEvery step above is a `plinth` command you can run again in another terminal.\n\n{listening}Press Ctrl-C to stop.",
                outcome.project.name,
                outcome.model_version,
                outcome.project.dir.display()
            ),
            // The platform stays up so that the failed step can be looked at and run again by hand.
            Err(err) => println!(
                "\nthe demo stopped: {err:#}\nThe platform keeps running: press Ctrl-C to stop."
            ),
        }
    }

    plinth_runtime::server::shutdown_signal().await;
    println!("stopping...");
    // The orchestrator first (its tasks call the others), then model serving (it reads features and logs
    // predictions), then the feature store (its stream consumers read through the data hub), then the
    // data hub (it
    // drains produce calls and closes its consumers while Kafka still answers), then the registry it
    // validates against, then the broker.
    let _ = stop_orchestrator.send(true);
    orchestrator_task
        .await
        .context("the orchestrator task failed")??;
    let _ = stop_serving.send(true);
    serving_task
        .await
        .context("the model serving task failed")??;
    let _ = stop_feature_store.send(true);
    feature_store_task
        .await
        .context("the feature store task failed")??;
    let _ = stop_datahub.send(true);
    datahub_task.await.context("the data hub task failed")??;
    let _ = stop_registry.send(true);
    registry_task
        .await
        .context("the schema registry task failed")??;
    if let Some(broker) = broker {
        broker.stop().await?;
    }
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts the local broker on `--kafka-port`, keeping topics under the data directory when the tansu
/// build can.
async fn start_broker(args: &UpArgs, data_dir: &Path) -> anyhow::Result<LocalBroker> {
    let binary = local_broker::find_tansu().ok_or_else(local_broker::not_found)?;
    let kafka_dir = data_dir.join("kafka");
    std::fs::create_dir_all(&kafka_dir)
        .with_context(|| format!("cannot create {}", kafka_dir.display()))?;
    let listen = SocketAddr::new(args.bind, args.kafka_port);
    LocalBroker::start_persistent(&binary, listen, &kafka_dir)
        .await
        .context(
            "the local Kafka broker cannot start (or pass --kafka-bootstrap HOST:PORT to use a running one)",
        )
}

/// The data hub's configuration for `plinth up`: SQLite and the lake under the data directory, the
/// in-process registry, short file and session times so that a local run shows results quickly.
fn datahub_config(
    args: &UpArgs,
    data_dir: &Path,
    bootstrap_servers: &str,
    registry_grpc: SocketAddr,
) -> anyhow::Result<plinth_datahub::Config> {
    let mut config = plinth_datahub::Config::default();
    config.server.grpc.listen = SocketAddr::new(args.bind, args.datahub_grpc_port);
    config.server.http.listen = SocketAddr::new(args.bind, args.datahub_http_port);
    config.server.shutdown_grace_period = GRACE_PERIOD;
    config.database.url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("datahub.db").display()
    );
    config.kafka.bootstrap_servers = bootstrap_servers.to_owned();
    // A fresh consumer group waits about half the session timeout before its first record.
    config.kafka.session_timeout = Duration::from_secs(3);
    config.registry.url = format!("http://{registry_grpc}")
        .parse()
        .context("the registry address is not a URL")?;
    let lake = data_dir.join("lake");
    std::fs::create_dir_all(&lake).with_context(|| format!("cannot create {}", lake.display()))?;
    config.lake.root = url::Url::from_directory_path(&lake)
        .map_err(|()| anyhow::anyhow!("{} is not an absolute directory", lake.display()))?
        .to_string();
    // Land records within seconds on a laptop; production keeps the larger default.
    config.lake.max_file_age = Duration::from_secs(5);
    Ok(config)
}

/// The feature store's configuration for `plinth up`: SQLite registry and embedded online store under
/// the data directory, the data hub's lake, and the in-process data hub for stream sources.
fn feature_store_config(
    args: &UpArgs,
    data_dir: &Path,
    datahub: &plinth_datahub::Config,
    datahub_grpc: SocketAddr,
) -> anyhow::Result<plinth_feature_store::Config> {
    let mut config = plinth_feature_store::Config::default();
    config.server.grpc.listen = SocketAddr::new(args.bind, args.feature_store_grpc_port);
    config.server.http.listen = SocketAddr::new(args.bind, args.feature_store_http_port);
    config.server.shutdown_grace_period = GRACE_PERIOD;
    config.database.url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("feature-store.db").display()
    );
    config.online.embedded_url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("feature-store-online.db").display()
    );
    config.lake.root = datahub.lake.root.clone();
    config.lake.options = datahub.lake.options.clone();
    config.datahub.url = format!("http://{datahub_grpc}")
        .parse()
        .context("the data hub address is not a URL")?;
    let spill = data_dir.join("spill");
    std::fs::create_dir_all(&spill)
        .with_context(|| format!("cannot create {}", spill.display()))?;
    config.training.spill_dir = Some(spill);
    Ok(config)
}

/// The orchestrator's configuration for `plinth up`: SQLite, logs and models under the data directory,
/// the data hub's lake, the local-process executor, and the in-process services as peers.
fn orchestrator_config(
    args: &UpArgs,
    data_dir: &Path,
    feature_store: &plinth_feature_store::Config,
    [
        registry_grpc,
        datahub_grpc,
        feature_store_grpc,
        serving_grpc,
    ]: [SocketAddr; 4],
) -> anyhow::Result<plinth_orchestrator::Config> {
    let mut config = plinth_orchestrator::Config::default();
    config.server.grpc.listen = SocketAddr::new(args.bind, args.orchestrator_grpc_port);
    config.server.http.listen = SocketAddr::new(args.bind, args.orchestrator_http_port);
    config.server.shutdown_grace_period = GRACE_PERIOD;
    config.database.url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("orchestrator.db").display()
    );
    let directory_url = |name: &str| -> anyhow::Result<String> {
        let dir = data_dir.join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(url::Url::from_directory_path(&dir)
            .map_err(|()| anyhow::anyhow!("{} is not an absolute directory", dir.display()))?
            .to_string())
    };
    config.logs.root = directory_url("logs")?;
    config.logs.spool_dir = Some(data_dir.join("log-spool"));
    config.models.root = directory_url("models")?;
    config.executor.local.work_dir = Some(data_dir.join("work"));
    config.lake.root = feature_store.lake.root.clone();
    config.lake.options = feature_store.lake.options.clone();
    let peer = |addr: SocketAddr| -> anyhow::Result<url::Url> {
        format!("http://{addr}")
            .parse()
            .context("a service address is not a URL")
    };
    config.registry.url = peer(registry_grpc)?;
    config.datahub.url = peer(datahub_grpc)?;
    config.feature_store.url = peer(feature_store_grpc)?;
    // Training sets and materialization can take minutes.
    config.feature_store.timeout = Duration::from_secs(3600);
    config.serving.url = peer(serving_grpc)?;
    Ok(config)
}

/// Model serving's configuration for `plinth up`: the orchestrator's model repository under the data
/// directory (every stored model's latest version loaded at start, so deployed models come back after a
/// restart), the in-process feature store, and predictions logged through the in-process data hub.
fn serving_config(
    args: &UpArgs,
    data_dir: &Path,
    [registry_grpc, datahub_grpc, feature_store_grpc]: [SocketAddr; 3],
) -> anyhow::Result<plinth_serving::Config> {
    let mut config = plinth_serving::Config::default();
    config.server.grpc.listen = SocketAddr::new(args.bind, args.serving_grpc_port);
    config.server.http.listen = SocketAddr::new(args.bind, args.serving_http_port);
    config.server.shutdown_grace_period = GRACE_PERIOD;
    let models = data_dir.join("models");
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    config.models.root = url::Url::from_directory_path(&models)
        .map_err(|()| anyhow::anyhow!("{} is not an absolute directory", models.display()))?
        .to_string();
    config.models.load_all = true;
    let peer = |addr: SocketAddr| -> anyhow::Result<url::Url> {
        format!("http://{addr}")
            .parse()
            .context("a service address is not a URL")
    };
    config.feature_store.url = peer(feature_store_grpc)?;
    config.monitoring.enabled = true;
    config.monitoring.datahub.url = peer(datahub_grpc)?;
    config.monitoring.registry.url = peer(registry_grpc)?;
    Ok(config)
}
