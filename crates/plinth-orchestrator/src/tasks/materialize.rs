//! `materialize`: asks the feature store to write the latest feature values of views into the online
//! store over a window (`Materialize`). A feature service is resolved to its views with
//! `DescribeDefinition` (the request takes views only).

use chrono::{DateTime, Utc};
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;
use saphyr::{LoadableYamlNode as _, Yaml};
use tokio::sync::watch;

use super::{DataInterval, Peer, Platform, TaskError, TaskReport, cancellable, status_error};
use crate::logs::LogWriter;

/// The service's name in messages.
pub(super) const FEATURE_STORE: &str = "feature store";

/// Which views to materialize: named views, the views of a feature service, or both; neither: every
/// online view.
#[derive(Debug, Clone, Copy)]
pub(super) struct Selection<'a> {
    pub(super) feature_views: &'a [String],
    pub(super) feature_service: Option<&'a str>,
}

/// The window of event times, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub(super) start: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
}

impl Window {
    /// `start` and `end` as written (RFC 3339), each defaulting to the run's data interval.
    pub(super) fn resolve(
        start: Option<&str>,
        end: Option<&str>,
        interval: DataInterval,
    ) -> Result<Self, TaskError> {
        let window = Self {
            start: start
                .map(|text| parse_time(text, "start"))
                .transpose()?
                .unwrap_or(interval.start),
            end: end
                .map(|text| parse_time(text, "end"))
                .transpose()?
                .unwrap_or(interval.end),
        };
        if window.start > window.end {
            return Err(TaskError::failed(format!(
                "the window starts ({}) after it ends ({}); fix `start` or `end`",
                window.start.to_rfc3339(),
                window.end.to_rfc3339()
            )));
        }
        Ok(window)
    }
}

fn parse_time(text: &str, field: &str) -> Result<DateTime<Utc>, TaskError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|err| {
            TaskError::failed(format!(
                "`{field}` is `{text}`, which is not an RFC 3339 time ({err}); write for example 2026-01-01T00:00:00Z, or leave it out to use the run's data interval"
            ))
        })
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn format_timestamp(time: Option<&prost_types::Timestamp>) -> String {
    time.and_then(|time| {
        DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).unwrap_or(0))
    })
    .map_or_else(|| "the beginning".to_owned(), |time| time.to_rfc3339())
}

/// Materializes the selected views over `window` (from each view's watermark when `incremental`).
pub(super) async fn materialize(
    platform: &Platform,
    selection: Selection<'_>,
    incremental: bool,
    window: Window,
    log: &LogWriter,
    mut cancel: watch::Receiver<bool>,
) -> Result<TaskReport, TaskError> {
    let peer = platform.feature_store()?;
    let mut client = FeatureStoreServiceClient::new(peer.channel.clone());
    let mut views: Vec<String> = selection.feature_views.to_vec();
    if let Some(service) = selection.feature_service {
        let service_views = cancellable(
            &mut cancel,
            feature_service_views(&mut client, peer, service),
        )
        .await?;
        log.line(&format!(
            "feature service `{service}` reads feature views {}",
            service_views.join(", ")
        ));
        for view in service_views {
            if !views.contains(&view) {
                views.push(view);
            }
        }
    }
    log.line(&format!(
        "materializing {} from the {} at {} over [{}, {}]{}",
        if views.is_empty() {
            "every online feature view".to_owned()
        } else {
            format!("feature views {}", views.join(", "))
        },
        FEATURE_STORE,
        peer.url,
        window.start.to_rfc3339(),
        window.end.to_rfc3339(),
        if incremental {
            " (incremental: each view from its watermark)"
        } else {
            ""
        }
    ));
    let request = pb::MaterializeRequest {
        feature_views: views,
        start_time: Some(timestamp(window.start)),
        end_time: Some(timestamp(window.end)),
        incremental,
    };
    let response = cancellable(&mut cancel, async {
        client
            .materialize(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status_error(FEATURE_STORE, peer, "Materialize", &status))
    })
    .await?;
    let (mut rows, mut entities) = (0_i64, 0_i64);
    for view in &response.views {
        rows += view.rows_read;
        entities += view.entities_written;
        log.line(&format!(
            "feature view `{}`: window [{}, {}], {} rows read, {} entities written",
            view.feature_view,
            format_timestamp(view.start_time.as_ref()),
            format_timestamp(view.end_time.as_ref()),
            view.rows_read,
            view.entities_written
        ));
    }
    Ok(TaskReport {
        summary: format!(
            "materialized {} feature view{}: {rows} rows read, {entities} entities written",
            response.views.len(),
            if response.views.len() == 1 { "" } else { "s" }
        ),
        output_url: None,
    })
}

/// The feature views a feature service reads, from its registered definition.
async fn feature_service_views(
    client: &mut FeatureStoreServiceClient<plinth_runtime::client::AuthChannel>,
    peer: &Peer,
    service: &str,
) -> Result<Vec<String>, TaskError> {
    let described = client
        .describe_definition(pb::DescribeDefinitionRequest {
            kind: pb::DefinitionKind::FeatureService.into(),
            name: service.to_owned(),
        })
        .await
        .map_err(|status| {
            if status.code() == tonic::Code::NotFound {
                TaskError::failed(format!(
                    "the feature service `{service}` is not registered in the {FEATURE_STORE} at {}: {}; apply its definition or fix `feature_service`",
                    peer.url,
                    status.message()
                ))
            } else {
                status_error(FEATURE_STORE, peer, "DescribeDefinition", &status)
            }
        })?
        .into_inner();
    service_views_from_yaml(&described.definition_yaml).ok_or_else(|| {
        TaskError::failed(format!(
            "the {FEATURE_STORE} at {} described feature service `{service}` in a form this orchestrator does not read (no `features` list); list its views in `feature_views` instead",
            peer.url
        ))
    })
}

/// The views of a feature service's canonical YAML:
/// `feature_services: [{name, features: [view | {view: [feature, ...]}]}]`.
pub(super) fn service_views_from_yaml(text: &str) -> Option<Vec<String>> {
    let documents = Yaml::load_from_str(text).ok()?;
    let services = documents.first()?.as_mapping_get("feature_services")?;
    let service = services.as_vec()?.first()?;
    let projections = service.as_mapping_get("features")?.as_vec()?;
    let mut views = Vec::with_capacity(projections.len());
    for projection in projections {
        let view = match projection.as_str() {
            Some(view) => view.to_owned(),
            None => {
                let (key, _) = projection.as_mapping()?.iter().next()?;
                key.as_str()?.to_owned()
            }
        };
        if !views.contains(&view) {
            views.push(view);
        }
    }
    Some(views)
}
