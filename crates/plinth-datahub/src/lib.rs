//! `plinth-datahub` will be the data hub gateway: topics bound to registered schemas, validated produce,
//! subscribe, and a sink that lands every topic in the data lake as Parquet. The service is not built
//! yet. Today the crate holds the lake's pure domain rules: the Arrow schema derived from a JSON Schema
//! ([`domain::lake_schema`]), how that schema evolves ([`domain::schema_evolution`]), JSON records with
//! their Kafka metadata turned into Arrow batches ([`domain::records`]), Parquet encoding in memory
//! ([`domain::lake_file`]) and the lake's file names, from which a restarted sink resumes
//! ([`domain::lake_path`]). None of it does IO.

pub mod domain;
