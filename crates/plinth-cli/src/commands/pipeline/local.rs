//! Validation without a server: the orchestrator's own parser (`plinth_orchestrator::domain::parse`),
//! linked into the CLI, answering in the shape of the ValidatePipelines RPC so that both print alike.

use plinth_orchestrator::domain::parse;
use plinth_proto::orchestrator::v1 as pb;

/// Parses and validates the files as the orchestrator of this CLI's version would.
pub(crate) fn validate(files: &[pb::PipelineFile]) -> pb::ValidatePipelinesResponse {
    let files: Vec<parse::PipelineFile> = files
        .iter()
        .map(|file| parse::PipelineFile {
            path: file.path.clone(),
            content: file.content.clone(),
        })
        .collect();
    match parse::parse(&files) {
        Ok(parsed) => pb::ValidatePipelinesResponse {
            pipelines: parsed
                .iter()
                .map(|parsed| {
                    let pipeline = &parsed.pipeline;
                    let (schedule, tasks) = parse::summary(pipeline);
                    pb::PipelineSummary {
                        name: pipeline.name.clone(),
                        owner: pipeline.owner.clone(),
                        description: pipeline.description.clone(),
                        // Empty means on demand, as on the wire.
                        schedule: if pipeline.schedule.is_some() {
                            schedule
                        } else {
                            String::new()
                        },
                        tasks: tasks.into_iter().map(str::to_owned).collect(),
                    }
                })
                .collect(),
            errors: Vec::new(),
        },
        Err(errors) => pb::ValidatePipelinesResponse {
            pipelines: Vec::new(),
            errors: errors
                .into_iter()
                .map(|error| pb::PipelineFileError {
                    path: error.path,
                    line: u32::try_from(error.line).unwrap_or(u32::MAX),
                    column: u32::try_from(error.column).unwrap_or(u32::MAX),
                    message: error.message,
                })
                .collect(),
        },
    }
}
