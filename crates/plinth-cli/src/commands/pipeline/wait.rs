//! `plinth pipeline run --wait`: start a run and follow its events until it ends, surviving a dropped
//! stream (an orchestrator restart, a load balancer's idle timeout) by resubscribing after the last
//! event seen and asking for the run's state.

use std::time::Duration;

use plinth_proto::orchestrator::v1 as pb;
use tonic::Streaming;

use super::{Client, format, required};
use crate::output::{Output, print_line};

/// How many times in a row the event stream may fail to (re)open before `--wait` gives up.
const MAX_RECONNECTS: u32 = 30;

/// Subscribes, starts the run, prints its events (text output) until it ends, then prints the run with
/// its tasks and returns it.
pub(super) async fn run_and_wait(
    client: &mut Client,
    request: pb::RunPipelineRequest,
    output: Output,
) -> anyhow::Result<pb::Run> {
    // Subscribe before triggering, so that not even the new run's first event is missed; the run's id
    // is not known yet, so filter by pipeline here and by run below.
    let mut events = subscribe(client, request.pipeline.clone(), String::new(), 0).await?;
    let run = required(crate::commands::call(client.run_pipeline(request).await)?.run)?;
    if output == Output::Text {
        print_line(&format::started_text(&run));
        print_line(&format!(
            "waiting for it to end (Ctrl-C stops waiting, not the run: plinth pipeline cancel {})",
            run.id
        ));
    }
    let mut state = run.state();
    let mut last_sequence = 0;
    let mut failures = 0;
    while !format::run_is_terminal(state) {
        match events.message().await {
            Ok(Some(pb::StreamRunEventsResponse { event: None })) => {}
            Ok(Some(pb::StreamRunEventsResponse { event: Some(event) })) => {
                failures = 0;
                last_sequence = last_sequence.max(event.sequence);
                if event.run_id != run.id {
                    continue;
                }
                if output == Output::Text {
                    print_line(&format::event_text(&event));
                }
                if event.task.is_empty() {
                    state = event.run_state();
                }
            }
            Ok(None) => {
                events = resubscribe(client, &run.id, last_sequence, &mut failures).await?;
                // Events stored while no stream was open are replayed after `last_sequence`; when no
                // event was seen yet, the run's own state says whether it already ended.
                state = get_run(client, &run.id, &mut failures).await?.state();
            }
            Err(status) if is_transient(&status) => {
                events = resubscribe(client, &run.id, last_sequence, &mut failures).await?;
                state = get_run(client, &run.id, &mut failures).await?.state();
            }
            Err(status) => return Err(crate::commands::status_error(&status)),
        }
    }
    // The orchestrator may be restarting right after the run's last event: ask until it answers.
    let run = get_run(client, &run.id, &mut 0).await?;
    output.print(&format::run_json(&run), || {
        format!("\n{}", format::status_text(&run, &format::now()))
    });
    Ok(run)
}

async fn subscribe(
    client: &mut Client,
    pipeline: String,
    run_id: String,
    after_sequence: i64,
) -> Result<Streaming<pb::StreamRunEventsResponse>, tonic::Status> {
    let request = pb::StreamRunEventsRequest {
        pipeline,
        run_id,
        after_sequence,
    };
    client
        .stream_run_events(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Opens the run's event stream again after `last_sequence`, with a growing pause between tries.
async fn resubscribe(
    client: &mut Client,
    run_id: &str,
    last_sequence: i64,
    failures: &mut u32,
) -> anyhow::Result<Streaming<pb::StreamRunEventsResponse>> {
    loop {
        pause_before_retry(run_id, failures).await?;
        match subscribe(client, String::new(), run_id.to_owned(), last_sequence).await {
            Ok(events) => return Ok(events),
            Err(status) if is_transient(&status) => {}
            Err(status) => return Err(crate::commands::status_error(&status)),
        }
    }
}

/// GetRun, asked again after connection errors (the orchestrator restarting).
async fn get_run(client: &mut Client, run_id: &str, failures: &mut u32) -> anyhow::Result<pb::Run> {
    loop {
        let request = pb::GetRunRequest {
            run_id: run_id.to_owned(),
        };
        match client.get_run(request).await {
            Ok(answer) => return required(answer.into_inner().run),
            Err(status) if is_transient(&status) => pause_before_retry(run_id, failures).await?,
            Err(status) => return Err(crate::commands::status_error(&status)),
        }
    }
}

/// Counts one more failure in a row and sleeps its backoff, or gives up after [`MAX_RECONNECTS`].
async fn pause_before_retry(run_id: &str, failures: &mut u32) -> anyhow::Result<()> {
    *failures += 1;
    if *failures > MAX_RECONNECTS {
        anyhow::bail!(
            "lost the orchestrator {MAX_RECONNECTS} times in a row; the run goes on: check it with plinth pipeline status {run_id}"
        );
    }
    tokio::time::sleep(backoff(*failures)).await;
    Ok(())
}

/// 200 ms, doubling, at most 5 s.
pub(super) fn backoff(failures: u32) -> Duration {
    let millis = 200u64.saturating_mul(1 << failures.saturating_sub(1).min(5));
    Duration::from_millis(millis.min(5_000))
}

/// Whether a stream error is the connection's rather than the request's: worth resubscribing.
pub(super) fn is_transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::Cancelled
    )
}
