//! The feature store's operations, one method each, shared by the gRPC, HTTP and Arrow Flight APIs:
//! plan/apply definitions, list/describe them, online reads, push, materialization and training sets.
//!
//! The applied project is cached in memory and re-read from the registry every
//! `serving.registry_refresh` (and at once after an apply on this replica), so online reads never wait
//! on SQL and every replica sees an apply within the refresh period.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use plinth_runtime::error::ApiError;

use crate::config::ServingConfig;
use crate::domain::definitions::{Project, SourceKind};
use crate::domain::parse::{self, DefinitionError, DefinitionKind};
use crate::domain::plan::{self, Change, ChangeType};
use crate::domain::selection::{FeatureRequest, Purpose, SelectedView, resolve};
use crate::domain::value::{Value, ValueType};
use crate::materialize::{self, ViewOutcome, Window};
use crate::offline::OfflineContext;
use crate::online::OnlineStore;
use crate::push::{PushOutcome, PushRequest};
use crate::registry::{ListFilter, Registry, RegistryError, StoredDefinition};
use crate::retrieval::{self, OnlineFeatures, OnlineRequest};

/// The feature store: registry, online store, lake.
#[derive(Debug)]
pub struct FeatureStore {
    registry: Registry,
    project: RwLock<Arc<Project>>,
    online: Arc<dyn OnlineStore>,
    offline: OfflineContext,
    serving: ServingConfig,
}

/// A materialization request.
#[derive(Debug, Clone, Default)]
pub struct MaterializeRequest {
    /// The views; empty: every online view with a batch source.
    pub views: Vec<String>,
    /// The window start (ignored when incremental).
    pub start: Option<i64>,
    /// The window end; `None`: now.
    pub end: Option<i64>,
    /// Continue from each view's watermark.
    pub incremental: bool,
}

/// Now, UTC microseconds.
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl FeatureStore {
    /// A store over its parts; the project is loaded from the registry.
    pub async fn new(
        registry: Registry,
        online: Arc<dyn OnlineStore>,
        offline: OfflineContext,
        serving: ServingConfig,
    ) -> Result<Self, RegistryError> {
        let project = registry.load_project().await?;
        Ok(Self {
            registry,
            project: RwLock::new(Arc::new(project)),
            online,
            offline,
            serving,
        })
    }

    /// The applied project, as last read.
    pub fn project(&self) -> Arc<Project> {
        self.project
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the project from the registry.
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let project = self.registry.load_project().await.map_err(registry_error)?;
        *self.project.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(project);
        Ok(())
    }

    /// The registry (readiness, watermarks).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The online store (readiness).
    pub fn online(&self) -> &Arc<dyn OnlineStore> {
        &self.online
    }

    /// How often the project is re-read.
    pub fn refresh_period(&self) -> std::time::Duration {
        self.serving.registry_refresh
    }

    /// What applying `files` would change.
    pub async fn plan(
        &self,
        files: &[(String, String)],
        prune: bool,
    ) -> Result<Vec<Change>, ApiError> {
        let parsed = parse::parse(files).map_err(definition_errors)?;
        let source_errors = self.check_sources(&parsed).await;
        if !source_errors.is_empty() {
            return Err(definition_errors(source_errors));
        }
        let current = self.registry.load_project().await.map_err(registry_error)?;
        plan::plan(&current, &parsed.project, prune).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            ApiError::failed_precondition("PLAN_DELETES_REFERENCED", lines.join("\n"))
        })
    }

    /// Applies `files`: the plan is stored in one transaction, and only against the registry version it
    /// was computed on. When another apply lands in between (another replica, another user), the plan is
    /// made again on the new state, so what is stored is always the diff from the state it replaced.
    pub async fn apply(
        &self,
        files: &[(String, String)],
        prune: bool,
    ) -> Result<Vec<Change>, ApiError> {
        let mut attempts = 0;
        let changes = loop {
            attempts += 1;
            let version = self.registry.version().await.map_err(registry_error)?;
            let changes = self.plan(files, prune).await?;
            match self.registry.apply_if_version(&changes, version).await {
                Ok(_) => break changes,
                Err(RegistryError::Conflict { .. }) if attempts < 5 => {
                    tracing::info!("another apply landed while planning; planning again");
                }
                Err(err) => return Err(registry_error(err)),
            }
        };
        for change in &changes {
            if change.kind == DefinitionKind::FeatureView
                && change.change == ChangeType::Delete
                && let Err(err) = self.online.delete_view(&change.name).await
            {
                tracing::warn!(view = %change.name, error = %err, "online rows of a deleted view were not removed");
            }
        }
        self.refresh().await?;
        Ok(changes)
    }

    /// Reads the column types of every source with a readable batch side and checks the declared types
    /// against them. A source whose data is not there yet (no files) is not checked: definitions usually
    /// come before data.
    async fn check_sources(&self, parsed: &parse::ParsedProject) -> Vec<DefinitionError> {
        let mut source_columns: BTreeMap<String, BTreeMap<String, ValueType>> = BTreeMap::new();
        for source in parsed.project.sources.values() {
            let Some(location) = source.batch_location() else {
                continue;
            };
            if matches!(source.kind, SourceKind::Push { .. }) {
                continue;
            }
            match crate::offline::reader::source_schema(&self.offline, location).await {
                Ok(columns) => {
                    source_columns.insert(source.name.clone(), columns);
                }
                Err(err) => {
                    tracing::debug!(source = %source.name, error = %err, "source not type-checked");
                }
            }
        }
        parse::check_source_columns(parsed, &source_columns)
    }

    /// Registered objects, filtered.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<StoredDefinition>, ApiError> {
        self.registry.list(filter).await.map_err(registry_error)
    }

    /// One registered object and, for a view, its watermark.
    pub async fn describe(
        &self,
        kind: DefinitionKind,
        name: &str,
    ) -> Result<(StoredDefinition, Option<i64>), ApiError> {
        let stored = self
            .registry
            .get(kind, name)
            .await
            .map_err(registry_error)?
            .ok_or_else(|| {
                ApiError::not_found(
                    "DEFINITION_NOT_FOUND",
                    format!(
                        "{} `{name}` is not registered; list what is with `plinth features list`",
                        kind.noun()
                    ),
                )
            })?;
        let watermark = if kind == DefinitionKind::FeatureView {
            self.registry
                .watermark(name)
                .await
                .map_err(registry_error)?
        } else {
            None
        };
        Ok((stored, watermark))
    }

    /// Latest feature values for entity rows.
    pub async fn get_online_features(
        &self,
        selection: &FeatureRequest,
        entities: Vec<(String, Vec<Value>)>,
        full_feature_names: bool,
    ) -> Result<OnlineFeatures, ApiError> {
        let project = self.project();
        let selected =
            resolve(&project, selection, Purpose::Online).map_err(crate::error::selection)?;
        let request = OnlineRequest {
            selected,
            entities,
            full_feature_names,
        };
        retrieval::get_online_features(
            &project,
            self.online.as_ref(),
            &request,
            self.serving.max_entity_rows,
            now_micros(),
        )
        .await
    }

    /// Pushes rows.
    pub async fn push(&self, request: PushRequest) -> Result<PushOutcome, ApiError> {
        let project = self.project();
        crate::push::push(
            &project,
            self.online.as_ref(),
            &self.offline,
            request,
            self.serving.max_push_rows,
            now_micros(),
        )
        .await
    }

    /// Materializes views; each view's watermark moves after its window is fully written.
    pub async fn materialize(
        &self,
        request: MaterializeRequest,
    ) -> Result<Vec<ViewOutcome>, ApiError> {
        let project = self.project();
        let end = request.end.unwrap_or_else(now_micros);
        let views: Vec<_> = if request.views.is_empty() {
            project
                .feature_views
                .values()
                .filter(|view| view.online)
                .filter(|view| {
                    project
                        .sources
                        .get(&view.source)
                        .and_then(|source| source.batch_location())
                        .is_some()
                })
                .collect()
        } else {
            request
                .views
                .iter()
                .map(|name| {
                    project.feature_views.get(name).ok_or_else(|| {
                        crate::error::selection(
                            crate::domain::selection::SelectionError::UnknownView {
                                view: name.clone(),
                                known: project
                                    .feature_views
                                    .keys()
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            },
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let mut outcomes = Vec::with_capacity(views.len());
        for view in views {
            if !view.online {
                return Err(crate::error::selection(
                    crate::domain::selection::SelectionError::NotAvailable {
                        view: view.name.clone(),
                        purpose: "online",
                    },
                ));
            }
            let window = if request.incremental {
                let watermark = self
                    .registry
                    .watermark(&view.name)
                    .await
                    .map_err(registry_error)?;
                materialize::incremental_window(watermark, view.ttl, end)
            } else {
                Window {
                    start: request.start,
                    end,
                }
            };
            if window.start.is_some_and(|start| start > end) {
                return Err(ApiError::invalid_argument(
                    "WINDOW_INVALID",
                    format!(
                        "the window of `{}` starts after it ends; give a start before the end",
                        view.name
                    ),
                )
                .with_field("start_time", "before end_time"));
            }
            let outcome = materialize::materialize_view(
                &project,
                view,
                window,
                &self.offline,
                self.online.as_ref(),
            )
            .await?;
            self.registry
                .set_watermark(&view.name, end)
                .await
                .map_err(registry_error)?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Resolves a selection for a training set.
    pub fn resolve_offline(
        &self,
        selection: &FeatureRequest,
    ) -> Result<(Arc<Project>, Vec<SelectedView>), ApiError> {
        let project = self.project();
        let selected =
            resolve(&project, selection, Purpose::Offline).map_err(crate::error::selection)?;
        Ok((project, selected))
    }

    /// The offline context (training sets).
    pub fn offline(&self) -> &OfflineContext {
        &self.offline
    }
}

/// A registry failure: UNAVAILABLE when the database does not answer, else internal.
pub(crate) fn registry_error(err: RegistryError) -> ApiError {
    if err.is_unavailable() {
        ApiError::unavailable("REGISTRY_UNAVAILABLE", err.to_string())
    } else {
        ApiError::internal(err)
    }
}

/// Definition mistakes as one INVALID_ARGUMENT listing each `file:line:column: message`.
pub(crate) fn definition_errors(errors: Vec<DefinitionError>) -> ApiError {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let mut err = ApiError::invalid_argument(
        "INVALID_DEFINITIONS",
        format!(
            "{} problem(s) in the definition files:\n{}",
            lines.len(),
            lines.join("\n")
        ),
    );
    for error in errors.iter().take(20) {
        err = err.with_field(
            format!("{}:{}:{}", error.path, error.line, error.column),
            error.message.clone(),
        );
    }
    err
}
