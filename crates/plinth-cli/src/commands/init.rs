//! `plinth init <name>`: a model project that takes a model from code to production on Plinth:
//! schemas, feature definitions, a training script with its requirements and unit tests, train and
//! batch-score pipelines, a training image, CI for GitHub Actions and GitLab CI, a README, and sample
//! data to try it out. The files are the templates under `crates/plinth-cli/templates/project/`, with
//! `@name@` and `@owner@` filled in.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use clap::Args;

/// The template files: path in the project, content with `@name@` and `@owner@` placeholders.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../templates/project/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/project/.gitignore"),
    ),
    (
        "schemas/events.json",
        include_str!("../../templates/project/schemas/events.json"),
    ),
    (
        "schemas/labels.json",
        include_str!("../../templates/project/schemas/labels.json"),
    ),
    (
        "features/features.yaml",
        include_str!("../../templates/project/features/features.yaml"),
    ),
    (
        "pipeline.yaml",
        include_str!("../../templates/project/pipeline.yaml"),
    ),
    (
        "train/train.py",
        include_str!("../../templates/project/train/train.py"),
    ),
    (
        "train/requirements.txt",
        include_str!("../../templates/project/train/requirements.txt"),
    ),
    (
        "tests/test_train.py",
        include_str!("../../templates/project/tests/test_train.py"),
    ),
    (
        "Dockerfile",
        include_str!("../../templates/project/Dockerfile"),
    ),
    (
        ".github/workflows/plinth.yml",
        include_str!("../../templates/project/.github/workflows/plinth.yml"),
    ),
    (
        ".gitlab-ci.yml",
        include_str!("../../templates/project/.gitlab-ci.yml"),
    ),
];

/// The longest project name (it prefixes topic, dataset, view and pipeline names).
const MAX_NAME_LENGTH: usize = 40;

/// `plinth init` flags.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  plinth init churn && cd churn && cat README.md")]
pub struct InitArgs {
    /// The project's name: lower-case letters, digits and `_`, starting with a letter. It names the
    /// model, its topics and datasets (`<name>_events`), feature view and service, and pipelines.
    pub name: String,
    /// The directory to create (default: ./NAME); it must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The owner written into the feature definitions and pipelines.
    #[arg(long, default_value = "ml-team")]
    pub owner: String,
    /// Customers in the sample data: four weekly snapshots each in data/events.jsonl and two labels
    /// each in data/labels.jsonl, over the last four weeks.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sample_customers: u32,
}

/// A generated project and the names in it.
#[derive(Debug, Clone)]
pub struct Project {
    /// Its directory.
    pub dir: PathBuf,
    /// Its name (the model's name).
    pub name: String,
    /// How many events `data/events.jsonl` holds.
    pub events: usize,
    /// How many labels `data/labels.jsonl` holds.
    pub labels: usize,
}

impl Project {
    /// The topic (and lake dataset) of the activity snapshots.
    pub fn events_topic(&self) -> String {
        format!("{}_events", self.name)
    }

    /// The topic (and lake dataset) of the churn labels.
    pub fn labels_topic(&self) -> String {
        format!("{}_labels", self.name)
    }

    /// The feature service the model is trained and served with.
    pub fn feature_service(&self) -> String {
        format!("{}_v1", self.name)
    }

    /// The feature view.
    pub fn feature_view(&self) -> String {
        format!("{}_customer_stats", self.name)
    }

    /// The training pipeline.
    pub fn train_pipeline(&self) -> String {
        format!("{}-train", self.name)
    }

    /// The batch-scoring pipeline.
    pub fn score_pipeline(&self) -> String {
        format!("{}-batch-score", self.name)
    }
}

/// Creates the project named in `args` and prints what it wrote and what to do next.
pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let project = generate(
        &dir,
        &args.name,
        &args.owner,
        args.sample_customers,
        Utc::now(),
    )?;
    println!("created {} in {}", project.name, dir.display());
    for (path, _) in TEMPLATES {
        println!("  {path}");
    }
    println!(
        "  data/events.jsonl ({} events), data/labels.jsonl ({} labels)",
        project.events, project.labels
    );
    println!();
    println!(
        "Next: start the platform (`plinth up`), then follow {}/README.md",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks a project name, with the fix.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= MAX_NAME_LENGTH
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        return Ok(());
    }
    let suggestion: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    anyhow::bail!(
        "the project name `{name}` is not valid: use lower-case letters, digits and `_`, starting with a letter, at most {MAX_NAME_LENGTH} characters (for example `{}`)",
        suggestion.trim_start_matches(|c: char| !c.is_ascii_lowercase())
    )
}

/// Writes the project `name` into `dir` (created; refused when it holds anything), with sample data
/// for `customers` customers whose snapshots end a week before `now`.
pub fn generate(
    dir: &Path,
    name: &str,
    owner: &str,
    customers: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<Project> {
    check_name(name)?;
    if owner.trim().is_empty() || owner.contains(['\n', '{', '}', ':', '#']) {
        anyhow::bail!(
            "the owner `{owner}` cannot go into YAML as is: give a team or an e-mail address"
        );
    }
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("{} exists and cannot be read", dir.display()))?;
        if entries.next().is_some() {
            anyhow::bail!(
                "{} exists and is not empty: choose another --dir or remove it",
                dir.display()
            );
        }
    }
    for (path, template) in TEMPLATES {
        let content = template.replace("@name@", name).replace("@owner@", owner);
        write(&dir.join(path), content.as_bytes())?;
    }
    let sample = sample::Sample::new(customers, now);
    let events = sample.events();
    let labels = sample.labels();
    write(&dir.join("data/events.jsonl"), &sample::jsonl(&events))?;
    write(&dir.join("data/labels.jsonl"), &sample::jsonl(&labels))?;
    Ok(Project {
        dir: dir.to_path_buf(),
        name: name.to_owned(),
        events: events.len(),
        labels: labels.len(),
    })
}

fn write(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))
}

/// The sample data: customers with a hidden engagement that drives both their activity snapshots and
/// whether they churn, so that a model has something to learn.
pub mod sample {
    use super::{DateTime, Duration, Utc};
    use chrono::DurationRound as _;
    use serde_json::{Value, json};

    /// How many days before `now` the four weekly snapshots are taken.
    const SNAPSHOT_DAYS: [i64; 4] = [28, 21, 14, 7];
    /// How many days before `now` the two labels are observed.
    const LABEL_DAYS: [i64; 2] = [10, 2];

    /// A deterministic sample for a number of customers and a point in time.
    #[derive(Debug, Clone)]
    pub struct Sample {
        customers: u32,
        now: DateTime<Utc>,
    }

    impl Sample {
        /// The sample of `customers` customers (ids 1..=customers) as seen at `now` (to the hour).
        pub fn new(customers: u32, now: DateTime<Utc>) -> Self {
            let now = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
            Self { customers, now }
        }

        /// The customers' engagement in [0, 1), one per customer, the same on every call.
        fn engagement(&self) -> Vec<f64> {
            let mut rng = SplitMix(0x5EED);
            (0..self.customers).map(|_| rng.unit()).collect()
        }

        /// Four weekly activity snapshots per customer, valid against `schemas/events.json`.
        pub fn events(&self) -> Vec<Value> {
            let mut rng = SplitMix(0xE7E7);
            let mut events = Vec::new();
            let customers = self.engagement();
            for days in SNAPSHOT_DAYS {
                for (index, &engagement) in customers.iter().enumerate() {
                    let engaged = (engagement + (rng.unit() - 0.5) * 0.1).clamp(0.0, 1.0);
                    let hour = (rng.next() % 12) as i64;
                    let at = self.now - Duration::days(days) + Duration::hours(hour);
                    events.push(json!({
                        "customer_id": index + 1,
                        "event_timestamp": timestamp(at),
                        "orders_7d": (engaged * 6.0 + rng.unit() - 0.5).round().max(0.0) as i64,
                        "avg_basket": ((20.0 + 60.0 * engaged + (rng.unit() - 0.5) * 10.0) * 100.0).round() / 100.0,
                        "days_since_last_order": ((1.0 - engaged) * 20.0 + (rng.unit() - 0.5) * 4.0).round().max(0.0) as i64,
                    }));
                }
            }
            events
        }

        /// Two churn labels per customer, observed after a snapshot (so every label has features as
        /// of its time), valid against `schemas/labels.json`.
        pub fn labels(&self) -> Vec<Value> {
            let mut rng = SplitMix(0x1ABE1);
            let mut labels = Vec::new();
            let customers = self.engagement();
            for days in LABEL_DAYS {
                for (index, &engagement) in customers.iter().enumerate() {
                    let churned = engagement + (rng.unit() - 0.5) * 0.2 < 0.35;
                    labels.push(json!({
                        "customer_id": index + 1,
                        "event_timestamp": timestamp(self.now - Duration::days(days)),
                        "churned": i64::from(churned),
                    }));
                }
            }
            labels
        }
    }

    /// One JSON document per line.
    pub fn jsonl(values: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for value in values {
            out.extend_from_slice(value.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn timestamp(at: DateTime<Utc>) -> String {
        at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// splitmix64: a small deterministic generator, so the sample is the same on every machine.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// A number in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }
}

#[cfg(test)]
mod tests;
