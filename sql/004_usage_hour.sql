-- Hourly usage rollup (being written).
SELECT 1;
