//! `plinth topic create|describe|list|delete`: topics bound to schema subjects, through the data hub.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{Subject, TopicName};
use serde_json::{Value, json};

use super::ConnectArgs;

/// `plinth topic ...`
#[derive(Debug, Args)]
pub struct TopicArgs {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topic command.
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// Topic commands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic bound to a registered subject: every record produced through the data hub is
    /// validated against it.
    ///
    /// Example: plinth topic create orders --value-subject orders-value --partitions 3 --retention 7d
    Create {
        /// The topic name, e.g. `orders`.
        name: String,
        /// The subject record values are validated against (must be registered).
        #[arg(long)]
        value_subject: String,
        /// Pin the value subject to this version (default: the latest version when each record is
        /// produced).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        value_version: Option<i32>,
        /// The subject record keys are validated against (default: keys are not validated).
        #[arg(long)]
        key_subject: Option<String>,
        /// Pin the key subject to this version.
        #[arg(long, requires = "key_subject", value_parser = clap::value_parser!(i32).range(1..))]
        key_version: Option<i32>,
        /// The number of partitions (default: the broker's).
        #[arg(long)]
        partitions: Option<u16>,
        /// The number of replicas of each partition (default: the broker's).
        #[arg(long)]
        replication_factor: Option<u16>,
        /// How long the broker keeps records: a duration such as `7d` or `12h`, or `unlimited`
        /// (default: the broker's).
        #[arg(long, value_parser = parse_retention)]
        retention: Option<pb::Retention>,
    },
    /// Show a topic's binding, the schema records are validated against now, and each partition's
    /// watermarks.
    ///
    /// Example: plinth topic describe orders
    Describe {
        /// The topic.
        name: String,
    },
    /// List the topics bound through the data hub.
    ///
    /// Example: plinth topic list --prefix ord
    List {
        /// Only topics starting with this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Delete a topic and its binding (refused while a lake sink reads it; lake datasets stay).
    ///
    /// Example: plinth topic delete orders
    Delete {
        /// The topic.
        name: String,
    },
}

fn parse_retention(text: &str) -> Result<pb::Retention, String> {
    let kind = if text.eq_ignore_ascii_case("unlimited") {
        pb::retention::Kind::Unlimited(true)
    } else {
        let period = plinth_runtime::config::duration::parse(text)
            .map_err(|err| format!("{err}; or `unlimited`"))?;
        pb::retention::Kind::Period(proto_duration(period))
    };
    Ok(pb::Retention { kind: Some(kind) })
}

fn proto_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}

fn binding(subject: String, version: Option<i32>) -> pb::SchemaBinding {
    pb::SchemaBinding {
        subject: Some(Subject::new(subject)),
        pinned_version: version,
    }
}

/// Runs a topic command.
pub async fn run(args: TopicArgs) -> anyhow::Result<ExitCode> {
    let output = args.connect.output;
    let mut client = super::datahub(&args.connect).await?;
    match args.command {
        TopicCommand::Create {
            name,
            value_subject,
            value_version,
            key_subject,
            key_version,
            partitions,
            replication_factor,
            retention,
        } => {
            let request = pb::CreateTopicRequest {
                name: Some(TopicName::new(name)),
                value_binding: Some(binding(value_subject, value_version)),
                key_binding: key_subject.map(|subject| binding(subject, key_version)),
                partition_count: partitions.map_or(0, i32::from),
                replication_factor: replication_factor.map_or(0, i32::from),
                retention,
            };
            let topic = super::call(client.create_topic(request).await)?
                .topic
                .unwrap_or_default();
            output.print(&topic_json(&topic), || {
                format!(
                    "created topic {} ({} partitions, replication {}, retention {}) bound to {}",
                    name_of(&topic),
                    topic.partition_count,
                    topic.replication_factor,
                    retention_text(topic.retention.as_ref()),
                    binding_text(topic.value_binding.as_ref()),
                )
            });
        }
        TopicCommand::Describe { name } => {
            let request = pb::DescribeTopicRequest {
                name: Some(TopicName::new(name)),
            };
            let answer = super::call(client.describe_topic(request).await)?;
            let topic = answer.topic.clone().unwrap_or_default();
            let mut body = topic_json(&topic);
            body["value_schema"] = resolved_json(answer.value_schema.as_ref());
            body["key_schema"] = resolved_json(answer.key_schema.as_ref());
            body["partitions"] = answer
                .partitions
                .iter()
                .map(|partition| {
                    json!({
                        "partition": partition.partition,
                        "low_watermark": partition.low_watermark,
                        "high_watermark": partition.high_watermark,
                    })
                })
                .collect();
            output.print(&body, || describe_text(&topic, &answer));
        }
        TopicCommand::List { prefix } => {
            let request = pb::ListTopicsRequest {
                name_prefix: prefix,
            };
            let topics = super::call(client.list_topics(request).await)?.topics;
            let body: Vec<Value> = topics.iter().map(topic_json).collect();
            output.print(&json!(body), || {
                topics
                    .iter()
                    .map(|topic| {
                        format!(
                            "{}  {} partitions  value {}{}",
                            name_of(topic),
                            topic.partition_count,
                            binding_text(topic.value_binding.as_ref()),
                            topic
                                .key_binding
                                .as_ref()
                                .map(|key| format!("  key {}", binding_text(Some(key))))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TopicCommand::Delete { name } => {
            let request = pb::DeleteTopicRequest {
                name: Some(TopicName::new(name)),
            };
            let topic = super::call(client.delete_topic(request).await)?
                .topic
                .unwrap_or_default();
            output.print(&topic_json(&topic), || {
                format!("deleted topic {}", name_of(&topic))
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn name_of(topic: &pb::Topic) -> &str {
    topic.name.as_ref().map_or("", TopicName::as_str)
}

fn binding_json(binding: Option<&pb::SchemaBinding>) -> Value {
    match binding {
        Some(binding) => json!({
            "subject": binding.subject.as_ref().map(Subject::as_str),
            "pinned_version": binding.pinned_version,
        }),
        None => Value::Null,
    }
}

fn binding_text(binding: Option<&pb::SchemaBinding>) -> String {
    match binding {
        Some(binding) => {
            let subject = binding.subject.as_ref().map_or("", Subject::as_str);
            match binding.pinned_version {
                Some(version) => format!("{subject} (version {version})"),
                None => format!("{subject} (latest)"),
            }
        }
        None => "-".to_owned(),
    }
}

fn retention_json(retention: Option<&pb::Retention>) -> Value {
    match retention.and_then(|retention| retention.kind.as_ref()) {
        Some(pb::retention::Kind::Unlimited(_)) => json!("unlimited"),
        Some(pb::retention::Kind::Period(period)) => json!(format_period(period)),
        None => Value::Null,
    }
}

fn retention_text(retention: Option<&pb::Retention>) -> String {
    match retention_json(retention) {
        Value::String(text) => text,
        _ => "broker default".to_owned(),
    }
}

fn format_period(period: &prost_types::Duration) -> String {
    let duration = Duration::new(
        u64::try_from(period.seconds).unwrap_or(0),
        u32::try_from(period.nanos).unwrap_or(0),
    );
    plinth_runtime::config::duration::format(duration)
}

fn resolved_json(resolved: Option<&pb::ResolvedSchema>) -> Value {
    match resolved {
        Some(resolved) => json!({
            "schema_id": resolved.schema_id.as_ref().map(|id| id.value),
            "version": resolved.version,
        }),
        None => Value::Null,
    }
}

fn topic_json(topic: &pb::Topic) -> Value {
    json!({
        "name": name_of(topic),
        "value_binding": binding_json(topic.value_binding.as_ref()),
        "key_binding": binding_json(topic.key_binding.as_ref()),
        "partition_count": topic.partition_count,
        "replication_factor": topic.replication_factor,
        "retention": retention_json(topic.retention.as_ref()),
        "create_time": super::format_timestamp(topic.create_time.as_ref()),
    })
}

fn describe_text(topic: &pb::Topic, answer: &pb::DescribeTopicResponse) -> String {
    let resolved = |resolved: Option<&pb::ResolvedSchema>| match resolved {
        Some(resolved) => format!(
            "schema id {} (version {})",
            resolved
                .schema_id
                .as_ref()
                .map(|id| id.value)
                .unwrap_or_default(),
            resolved.version
        ),
        None => "-".to_owned(),
    };
    let mut lines = vec![
        format!("topic       {}", name_of(topic)),
        format!(
            "value       {} -> {}",
            binding_text(topic.value_binding.as_ref()),
            resolved(answer.value_schema.as_ref())
        ),
    ];
    if topic.key_binding.is_some() {
        lines.push(format!(
            "key         {} -> {}",
            binding_text(topic.key_binding.as_ref()),
            resolved(answer.key_schema.as_ref())
        ));
    }
    lines.push(format!(
        "replication {}   retention {}",
        topic.replication_factor,
        retention_text(topic.retention.as_ref())
    ));
    lines.push("partition  low  high".to_owned());
    for partition in &answer.partitions {
        lines.push(format!(
            "{:>9}  {}  {}",
            partition.partition, partition.low_watermark, partition.high_watermark
        ));
    }
    lines.join("\n")
}
