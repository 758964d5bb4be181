//! `plinth features plan|apply|list|describe|materialize|get|training-set`: the feature store over gRPC
//! (`plinth.featurestore.v1`).

mod format;
mod parse;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;
use plinth_proto::ids::DatasetName;
use serde_json::{Value, json};

use super::ConnectArgs;
use crate::output::{dash, table};

/// `plinth features ...`
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The feature store command.
    #[command(subcommand)]
    pub command: FeaturesCommand,
}

/// Feature store commands.
#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Show what `apply` would change in the registry, without changing it.
    ///
    /// Example: plinth features plan features/
    Plan(DefinitionArgs),
    /// Validate the definitions and store them in the registry (all or nothing).
    ///
    /// Example: plinth features apply features/ --prune
    Apply(DefinitionArgs),
    /// List the registered entities, sources, feature views and feature services.
    ///
    /// Example: plinth features list --kind feature-view --tag team=risk
    List {
        /// Only objects of this kind.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// Only objects carrying this tag, KEY=VALUE (repeatable: every tag must match).
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse::parse_tag)]
        tags: Vec<(String, String)>,
        /// Only objects of this owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Show one registered object: its definition as YAML and, for a feature view, how far it is
    /// materialized.
    ///
    /// Example: plinth features describe feature-view driver_hourly_stats
    Describe {
        /// The kind of object.
        #[arg(value_enum)]
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// Write the latest feature values of a time window, read from the views' batch sources, to the
    /// online store.
    ///
    /// Example: plinth features materialize --views driver_hourly_stats --incremental
    Materialize {
        /// The feature views to materialize, comma-separated (default: every online feature view).
        #[arg(long, value_name = "VIEW,...", value_delimiter = ',')]
        views: Vec<String>,
        /// The start of the window, RFC 3339 (with --incremental, each view's watermark instead).
        #[arg(long, value_parser = super::parse_timestamp, conflicts_with = "incremental")]
        start: Option<prost_types::Timestamp>,
        /// The end of the window (inclusive), RFC 3339 (default: now).
        #[arg(long, value_parser = super::parse_timestamp)]
        end: Option<prost_types::Timestamp>,
        /// Continue each view from where its last materialization ended.
        #[arg(long)]
        incremental: bool,
        /// How long to wait for the whole run, e.g. 30m (replaces --timeout for this command).
        #[arg(long, default_value = "1h", value_parser = parse_deadline)]
        deadline: Duration,
    },
    /// Read the online features of entities, e.g. for a prediction.
    ///
    /// Example: plinth features get --feature-service driver_ranking --entity driver_id=1001 --entity driver_id=1002
    #[command(group(ArgGroup::new("selection").required(true).args(["feature_service", "features"])))]
    Get {
        /// A registered feature service.
        #[arg(long)]
        feature_service: Option<String>,
        /// Feature references VIEW:FEATURE, comma-separated.
        #[arg(long, value_name = "VIEW:FEATURE,...", value_delimiter = ',', value_parser = parse::parse_feature_ref)]
        features: Vec<String>,
        /// One entity row: KEY=VALUE, several keys as a=1,b=2. Numbers are sent as int64 and other
        /// values as text; `s:` forces text (driver_id=s:1001). Repeat once per row.
        #[arg(
            long = "entity",
            value_name = "KEY=VALUE[,KEY=VALUE]",
            required = true,
            value_parser = parse::check_entity_row
        )]
        entities: Vec<String>,
        /// Name features `<view>__<feature>` instead of `<feature>`.
        #[arg(long)]
        full_names: bool,
    },
    /// Build a point-in-time-correct training set and write it to the lake as a Parquet dataset.
    ///
    /// Example: plinth features training-set --feature-service driver_ranking --entities-file drivers.parquet --output-dataset driver_training_v1
    #[command(group(ArgGroup::new("selection").required(true).args(["feature_service", "features"])))]
    #[command(group(ArgGroup::new("entity_rows").required(true).args(["entities_dataset", "entities_url", "entities_file"])))]
    TrainingSet {
        /// A registered feature service.
        #[arg(long)]
        feature_service: Option<String>,
        /// Feature references VIEW:FEATURE, comma-separated.
        #[arg(long, value_name = "VIEW:FEATURE,...", value_delimiter = ',', value_parser = parse::parse_feature_ref)]
        features: Vec<String>,
        /// The entity dataframe as a lake dataset.
        #[arg(long)]
        entities_dataset: Option<String>,
        /// The entity dataframe as a Parquet file or directory URL the feature store reads
        /// (file:///..., s3://...).
        #[arg(long)]
        entities_url: Option<String>,
        /// The entity dataframe as a local Parquet file, sent inline (bounded by the request size limit).
        #[arg(long)]
        entities_file: Option<PathBuf>,
        /// The lake dataset to write the training set to; it must not exist yet.
        #[arg(long)]
        output_dataset: String,
        /// The entity dataframe's event timestamp column (default: event_timestamp).
        #[arg(long)]
        timestamp_column: Option<String>,
        /// Name columns `<feature>` instead of `<view>__<feature>` (refused when two views share a name).
        #[arg(long)]
        short_names: bool,
        /// Ignore feature rows created after the entity row's timestamp (no leakage from backfills).
        #[arg(long)]
        filter_by_created_timestamp: bool,
        /// How long to wait for the build, e.g. 30m (replaces --timeout for this command).
        #[arg(long, default_value = "1h", value_parser = parse_deadline)]
        deadline: Duration,
    },
}

/// The paths and flags of `plan` and `apply`.
#[derive(Debug, Args)]
pub struct DefinitionArgs {
    /// Definition files, or directories walked for *.yaml and *.yml (in sorted order).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Also remove the registered objects the files no longer declare.
    #[arg(long)]
    pub prune: bool,
}

/// The kinds of registered objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Entities: names, join keys and their types.
    Entity,
    /// Data sources: lake datasets, Parquet paths, topics, push sources.
    Source,
    /// Feature views.
    FeatureView,
    /// Feature services.
    FeatureService,
}

impl Kind {
    fn proto(self) -> pb::DefinitionKind {
        match self {
            Self::Entity => pb::DefinitionKind::Entity,
            Self::Source => pb::DefinitionKind::Source,
            Self::FeatureView => pb::DefinitionKind::FeatureView,
            Self::FeatureService => pb::DefinitionKind::FeatureService,
        }
    }
}

fn parse_deadline(text: &str) -> Result<Duration, String> {
    match plinth_runtime::config::duration::parse(text)? {
        duration if duration.is_zero() => Err("must be greater than zero, e.g. 30m".to_owned()),
        duration => Ok(duration),
    }
}

type Client = FeatureStoreServiceClient<plinth_runtime::client::AuthChannel>;

/// Connects to `--feature-store`, with `deadline` instead of `--timeout` when given (long builds).
async fn connect(args: &ConnectArgs, deadline: Option<Duration>) -> anyhow::Result<Client> {
    let mut args = args.clone();
    if let Some(deadline) = deadline {
        args.timeout = deadline;
    }
    let channel = super::channel(&args.feature_store, &args).await?;
    // Online answers and inline entity dataframes can be large; the feature store bounds them itself.
    Ok(FeatureStoreServiceClient::new(channel)
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024))
}

/// Runs a feature store command.
pub async fn run(args: FeaturesArgs) -> anyhow::Result<ExitCode> {
    let output = args.connect.output;
    match args.command {
        FeaturesCommand::Plan(definitions) => {
            let files = definition_files(&definitions.paths)?;
            let mut client = connect(&args.connect, None).await?;
            let request = pb::PlanDefinitionsRequest {
                files,
                prune: definitions.prune,
            };
            let changes = super::call(client.plan_definitions(request).await)?.changes;
            output.print(&format::plan_json(&changes), || {
                format::plan_text(&changes, false, definitions.prune)
            });
        }
        FeaturesCommand::Apply(definitions) => {
            let files = definition_files(&definitions.paths)?;
            let mut client = connect(&args.connect, None).await?;
            let request = pb::ApplyDefinitionsRequest {
                files,
                prune: definitions.prune,
            };
            let changes = super::call(client.apply_definitions(request).await)?.changes;
            output.print(&format::plan_json(&changes), || {
                format::plan_text(&changes, true, definitions.prune)
            });
        }
        FeaturesCommand::List { kind, tags, owner } => {
            let mut client = connect(&args.connect, None).await?;
            let request = pb::ListDefinitionsRequest {
                kind: kind
                    .map_or(pb::DefinitionKind::Unspecified, Kind::proto)
                    .into(),
                tags: tags.into_iter().collect(),
                owner: owner.unwrap_or_default(),
            };
            let definitions = super::call(client.list_definitions(request).await)?.definitions;
            let body: Vec<Value> = definitions.iter().map(format::summary_json).collect();
            output.print(&json!(body), || list_text(&definitions));
        }
        FeaturesCommand::Describe { kind, name } => {
            let mut client = connect(&args.connect, None).await?;
            let request = pb::DescribeDefinitionRequest {
                kind: kind.proto().into(),
                name,
            };
            let answer = super::call(client.describe_definition(request).await)?;
            let summary = answer.summary.clone().unwrap_or_default();
            let mut body = format::summary_json(&summary);
            body["definition_yaml"] = json!(answer.definition_yaml);
            body["materialized_until"] =
                json!(super::format_timestamp(answer.materialized_until.as_ref()));
            output.print(&body, || describe_text(&summary, &answer));
        }
        FeaturesCommand::Materialize {
            views,
            start,
            end,
            incremental,
            deadline,
        } => {
            let mut client = connect(&args.connect, Some(deadline)).await?;
            let request = pb::MaterializeRequest {
                feature_views: views,
                start_time: start,
                end_time: end,
                incremental,
            };
            let views = super::call(client.materialize(request).await)?.views;
            output.print(&materialize_json(&views), || materialize_text(&views));
        }
        FeaturesCommand::Get {
            feature_service,
            features,
            entities,
            full_names,
        } => {
            let features = parse::selection(feature_service, features)?;
            let rows = entities
                .iter()
                .map(|row| parse::parse_entity_row(row).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (keys, entities) = parse::entity_columns(rows)?;
            let mut client = connect(&args.connect, None).await?;
            let request = pb::GetOnlineFeaturesRequest {
                features: Some(features),
                entities,
                full_feature_names: full_names,
            };
            let answer = super::call(client.get_online_features(request).await)?;
            let rows = format::online_rows(&answer, &keys);
            output.print(&json!(rows.json), || {
                let headers: Vec<&str> = rows.headers.iter().map(String::as_str).collect();
                table(&headers, &rows.rows)
            });
        }
        FeaturesCommand::TrainingSet {
            feature_service,
            features,
            entities_dataset,
            entities_url,
            entities_file,
            output_dataset,
            timestamp_column,
            short_names,
            filter_by_created_timestamp,
            deadline,
        } => {
            let features = parse::selection(feature_service, features)?;
            let entities = match (entities_dataset, entities_url, entities_file) {
                (Some(dataset), _, _) => {
                    pb::training_set_request::Entities::EntityDataset(DatasetName::new(dataset))
                }
                (None, Some(url), _) => pb::training_set_request::Entities::EntityUrl(url),
                (None, None, Some(file)) => {
                    pb::training_set_request::Entities::EntityArrowIpc(parquet_to_arrow_ipc(&file)?)
                }
                (None, None, None) => anyhow::bail!(
                    "no entity dataframe: pass --entities-dataset, --entities-url or --entities-file"
                ),
            };
            let mut client = connect(&args.connect, Some(deadline)).await?;
            let request = pb::GetTrainingSetRequest {
                training_set: Some(pb::TrainingSetRequest {
                    features: Some(features),
                    entities: Some(entities),
                    event_timestamp_column: timestamp_column.unwrap_or_default(),
                    short_feature_names: short_names,
                    filter_by_created_timestamp,
                }),
                output_dataset: Some(DatasetName::new(output_dataset.clone())),
            };
            let answer = super::call(client.get_training_set(request).await)?;
            output.print(
                &json!({
                    "output_dataset": output_dataset,
                    "output_url": answer.output_url,
                    "row_count": answer.row_count,
                    "columns": answer.columns,
                }),
                || {
                    format!(
                        "wrote {} rows to dataset {output_dataset} ({})\ncolumns: {}",
                        answer.row_count,
                        answer.output_url,
                        answer.columns.join(", ")
                    )
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a local Parquet file into an Arrow IPC stream, the inline entity dataframe of a training set.
fn parquet_to_arrow_ipc(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the entity file {}", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::build)
        .with_context(|| {
            format!(
                "{} is not a readable Parquet file: write the entity dataframe as Parquet (e.g. pandas to_parquet)",
                path.display()
            )
        })?;
    let schema = arrow::array::RecordBatchReader::schema(&reader);
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)
        .context("cannot encode the entity dataframe as Arrow IPC")?;
    for batch in reader {
        let batch =
            batch.with_context(|| format!("cannot read the entity file {}", path.display()))?;
        writer
            .write(&batch)
            .context("cannot encode the entity dataframe as Arrow IPC")?;
    }
    writer
        .into_inner()
        .context("cannot encode the entity dataframe as Arrow IPC")
}

/// The definition files under `paths` (files, or directories of `*.yaml`), read into the request's form.
fn definition_files(paths: &[PathBuf]) -> anyhow::Result<Vec<pb::DefinitionFile>> {
    let files = crate::files::read_yaml_files(paths, "definition")?;
    Ok(files
        .into_iter()
        .map(|file| pb::DefinitionFile {
            path: file.path,
            content: file.content,
        })
        .collect())
}

fn list_text(definitions: &[pb::DefinitionSummary]) -> String {
    if definitions.is_empty() {
        return "no registered objects match".to_owned();
    }
    let rows: Vec<Vec<String>> = definitions
        .iter()
        .map(|summary| {
            vec![
                format::kind_name(summary.kind()).to_owned(),
                summary.name.clone(),
                dash(&summary.owner),
                dash(&format::tags_text(&summary.tags)),
                super::format_timestamp(summary.update_time.as_ref())
                    .unwrap_or_else(|| "-".to_owned()),
                dash(&summary.description),
            ]
        })
        .collect();
    table(
        &["KIND", "NAME", "OWNER", "TAGS", "UPDATED", "DESCRIPTION"],
        &rows,
    )
}

fn describe_text(
    summary: &pb::DefinitionSummary,
    answer: &pb::DescribeDefinitionResponse,
) -> String {
    let mut lines = vec![
        format!("{} {}", format::kind_name(summary.kind()), summary.name),
        format!("owner:        {}", dash(&summary.owner)),
        format!("description:  {}", dash(&summary.description)),
        format!("tags:         {}", dash(&format::tags_text(&summary.tags))),
        format!(
            "updated:      {}",
            super::format_timestamp(summary.update_time.as_ref()).unwrap_or_else(|| "-".to_owned())
        ),
    ];
    if summary.kind() == pb::DefinitionKind::FeatureView {
        lines.push(format!(
            "materialized: {}",
            super::format_timestamp(answer.materialized_until.as_ref())
                .map_or_else(|| "never".to_owned(), |time| format!("until {time}"))
        ));
    }
    lines.push("---".to_owned());
    lines.push(answer.definition_yaml.trim_end().to_owned());
    lines.join("\n")
}

fn materialize_json(views: &[pb::MaterializedView]) -> Value {
    json!(
        views
            .iter()
            .map(|view| json!({
                "feature_view": view.feature_view,
                "start_time": super::format_timestamp(view.start_time.as_ref()),
                "end_time": super::format_timestamp(view.end_time.as_ref()),
                "rows_read": view.rows_read,
                "entities_written": view.entities_written,
            }))
            .collect::<Vec<_>>()
    )
}

fn materialize_text(views: &[pb::MaterializedView]) -> String {
    if views.is_empty() {
        return "nothing to materialize: no online feature view matches".to_owned();
    }
    let time = |time: Option<&prost_types::Timestamp>| {
        super::format_timestamp(time).unwrap_or_else(|| "-".to_owned())
    };
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|view| {
            vec![
                view.feature_view.clone(),
                time(view.start_time.as_ref()),
                time(view.end_time.as_ref()),
                view.rows_read.to_string(),
                view.entities_written.to_string(),
            ]
        })
        .collect();
    let rows_read: i64 = views.iter().map(|view| view.rows_read).sum();
    let written: i64 = views.iter().map(|view| view.entities_written).sum();
    format!(
        "{}\n\nmaterialized {} {}: {rows_read} rows read, {written} entities written",
        table(
            &[
                "FEATURE VIEW",
                "FROM",
                "UNTIL",
                "ROWS READ",
                "ENTITIES WRITTEN"
            ],
            &rows
        ),
        views.len(),
        if views.len() == 1 { "view" } else { "views" }
    )
}

#[cfg(test)]
mod tests;
