//! `deploy-model` against the model-serving double.

use super::support::{Dirs, ServingDouble, TaskLog, closed_addr, lazy_channel};
use super::*;

#[tokio::test]
async fn deploy_model_loads_the_version_and_waits_until_it_is_ready() {
    let dirs = Dirs::new();
    let serving = ServingDouble::default();
    serving.store("churn", "v1");
    serving.load("churn", "v0");
    let server = serving.spawn().await;
    let (url, channel) = lazy_channel(server.addr);
    let platform = dirs.platform().with_model_serving(url, channel);
    let log = TaskLog::new(&dirs);
    let report = run(
        &platform,
        &deploy_task("churn", "v1"),
        interval(),
        &log.writer,
        never_cancelled(),
    )
    .await
    .unwrap();
    assert_eq!(report.summary, "deployed model `churn` version `v1`");
    assert_eq!(
        serving.state.lock().unwrap().loaded.get("churn"),
        Some(&"v1".to_owned())
    );
    let text = log.text().await;
    assert!(
        text.contains("to load model `churn` version `v1`"),
        "{text}"
    );
    assert!(text.contains("is loaded and ready"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn deploy_model_of_a_version_not_in_the_repository_fails_without_retry() {
    let dirs = Dirs::new();
    let serving = ServingDouble::default();
    serving.load("churn", "v1");
    let server = serving.spawn().await;
    let (url, channel) = lazy_channel(server.addr);
    let platform = dirs.platform().with_model_serving(url, channel);
    let log = TaskLog::new(&dirs);
    let (message, retryable) = failure(
        run(
            &platform,
            &deploy_task("churn", "v9"),
            interval(),
            &log.writer,
            never_cancelled(),
        )
        .await,
    );
    assert!(
        message.contains("has no model `churn` version `v9`"),
        "{message}"
    );
    assert!(
        message.contains("store it first with a `train` task"),
        "{message}"
    );
    assert!(!retryable);
    // The running version keeps serving.
    assert_eq!(
        serving.state.lock().unwrap().loaded.get("churn"),
        Some(&"v1".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn deploy_model_with_serving_down_is_retryable_and_names_the_url() {
    let dirs = Dirs::new();
    let (url, channel) = lazy_channel(closed_addr());
    let platform = dirs.platform().with_model_serving(url.clone(), channel);
    let log = TaskLog::new(&dirs);
    let (message, retryable) = failure(
        run(
            &platform,
            &deploy_task("churn", "v1"),
            interval(),
            &log.writer,
            never_cancelled(),
        )
        .await,
    );
    assert!(retryable, "{message}");
    assert!(message.contains(url.as_str()), "{message}");
    assert!(message.contains("unavailable"), "{message}");
}

#[tokio::test]
async fn deploy_model_without_serving_configured_says_what_to_set() {
    let dirs = Dirs::new();
    let log = TaskLog::new(&dirs);
    let (message, retryable) = failure(
        run(
            &dirs.platform(),
            &deploy_task("churn", "v1"),
            interval(),
            &log.writer,
            never_cancelled(),
        )
        .await,
    );
    assert!(message.contains("set [serving] url"), "{message}");
    assert!(!retryable);
}
