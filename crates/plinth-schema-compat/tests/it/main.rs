//! Behavior tests of `plinth-schema-compat` through its public API: Confluent's own
//! data-driven diff cases (`confluent_cases`) and registry-shaped scenarios (`scenarios`).

mod confluent_cases;
mod scenarios;
