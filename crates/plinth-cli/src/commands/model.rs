//! `plinth model list|load|unload|predict`: model serving over gRPC (`plinth.serving.v1`).

mod format;
mod parse;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use plinth_proto::serving::v1 as pb;
use plinth_proto::serving::v1::serving_service_client::ServingServiceClient;
use serde_json::json;

use super::ConnectArgs;

/// `plinth model ...`
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  plinth model list\n  \
    plinth model load driver --version v2\n  \
    plinth model predict driver --key driver_id=1001 --key driver_id=1002 --features\n  \
    plinth model predict driver --entities '{\"driver_id\": [1001, 1002]}' -o json\n  \
    plinth model unload driver --version v1\n\n\
    The server is --serving (env PLINTH_SERVING_URL); --token, --ca-cert and --timeout apply as for \
    every other command.")]
pub struct ModelArgs {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Model serving gRPC endpoint (`plinth.serving.v1` and the Open Inference Protocol V2).
    #[arg(
        long,
        visible_alias = "serving-url",
        env = "PLINTH_SERVING_URL",
        default_value = "http://127.0.0.1:8001",
        global = true
    )]
    pub serving: url::Url,
    /// The model serving command.
    #[command(subcommand)]
    pub command: ModelCommand,
}

/// Model serving commands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// List the models of the repository: each version's state (`*` marks the one serving requests that
    /// name no version), the serving version's inputs and outputs, and its feature service.
    ///
    /// Example: plinth model list --prefix driver
    List {
        /// Only models whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Load a version (the latest complete one by default), check its reference input/output and make it
    /// the serving version. On failure the version serving before keeps serving.
    ///
    /// Example: plinth model load driver --version v2
    Load {
        /// The model's name (its directory in the repository).
        name: String,
        /// The version's directory name; default: the latest complete version (v2 < v10).
        #[arg(long)]
        version: Option<String>,
    },
    /// Unload one version, or every loaded version of the model; requests in flight finish.
    ///
    /// Example: plinth model unload driver --version v1
    Unload {
        /// The model's name.
        name: String,
        /// The version; default: every loaded version.
        #[arg(long)]
        version: Option<String>,
    },
    /// Predict by entity key: the server reads each key's features from the feature store, runs the
    /// model and answers per key its status and outputs. Exit code 1 when a key has no prediction.
    ///
    /// Example: plinth model predict driver --key driver_id=1001 --key driver_id=1002 --features
    #[command(group(ArgGroup::new("rows").required(true).args(["keys", "entities"])))]
    Predict {
        /// The model's name.
        model: String,
        /// The version; default: the serving version.
        #[arg(long)]
        version: Option<String>,
        /// One entity row: KEY=VALUE, several join keys as a=1,b=2. Integers are sent as int64 and other
        /// values as text; `s:` forces text (driver_id=s:1001). Repeat once per row.
        #[arg(
            long = "key",
            value_name = "KEY=VALUE[,KEY=VALUE]",
            value_parser = parse::check_key_row,
            conflicts_with = "entities"
        )]
        keys: Vec<String>,
        /// The entity rows as a JSON object, column-major: join key -> one value per row, e.g.
        /// '{"driver_id": [1001, 1002]}'; `@FILE` reads it from a file. Integers are sent as int64,
        /// other numbers as double, strings as text, booleans as bool.
        #[arg(long, value_name = "JSON|@FILE")]
        entities: Option<String>,
        /// Also print the feature values each prediction used.
        #[arg(long)]
        features: bool,
        /// An id for the prediction log (default: the server makes one).
        #[arg(long)]
        request_id: Option<String>,
    },
}

type Client = ServingServiceClient<plinth_runtime::client::AuthChannel>;

/// Connects to `--serving`.
async fn connect(args: &ModelArgs) -> anyhow::Result<Client> {
    let channel = super::channel(&args.serving, &args.connect).await?;
    // A batch of keys with their features can be large; the server bounds requests itself.
    Ok(ServingServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

/// Runs a model serving command.
pub async fn run(args: ModelArgs) -> anyhow::Result<ExitCode> {
    let output = args.connect.output;
    match &args.command {
        ModelCommand::List { prefix } => {
            let mut client = connect(&args).await?;
            let request = pb::ListModelsRequest {
                prefix: prefix.clone().unwrap_or_default(),
            };
            let models = super::call(client.list_models(request).await)?.models;
            output.print(&format::models_json(&models), || {
                format::models_text(&models, prefix.as_deref())
            });
        }
        ModelCommand::Load { name, version } => {
            let mut client = connect(&args).await?;
            let request = pb::LoadModelRequest {
                name: name.clone(),
                version: version.clone().unwrap_or_default(),
            };
            let answer = super::call(client.load_model(request).await)?;
            let model = answer.model.context(
                "model serving answered LoadModel without the model: is --serving a Plinth model server of this version?",
            )?;
            let mut body = format::model_json(&model);
            body["loaded_version"] = json!(answer.version);
            output.print(&body, || format::loaded_text(&model, &answer.version));
        }
        ModelCommand::Unload { name, version } => {
            let mut client = connect(&args).await?;
            let request = pb::UnloadModelRequest {
                name: name.clone(),
                version: version.clone().unwrap_or_default(),
            };
            let versions = super::call(client.unload_model(request).await)?.versions;
            output.print(&json!({"model": name, "unloaded": versions}), || {
                format::unloaded_text(name, &versions)
            });
        }
        ModelCommand::Predict {
            model,
            version,
            keys,
            entities,
            features,
            request_id,
        } => {
            let rows = match entities {
                Some(text) => parse::entities_json(&parse::read_entities_arg(text)?)?,
                None => parse::key_rows(keys)?,
            };
            let mut client = connect(&args).await?;
            let request = pb::PredictByKeyRequest {
                model: model.clone(),
                version: version.clone().unwrap_or_default(),
                entities: rows.columns(),
                include_features: *features,
                request_id: request_id.clone().unwrap_or_default(),
            };
            let answer = super::call(client.predict_by_key(request).await)?;
            if answer.predictions.len() != rows.len() {
                anyhow::bail!(
                    "model serving answered {} predictions for {} entity rows: is --serving a Plinth model server of this version?",
                    answer.predictions.len(),
                    rows.len()
                );
            }
            let report = format::predictions(&answer, &rows, *features);
            output.print(&report.json, || report.text.clone());
            if !report.all_ok {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
