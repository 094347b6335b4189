DROP TABLE legacy_token_cutoffs;
