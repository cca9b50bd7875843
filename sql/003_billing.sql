-- Billing: closed periods and their frozen lines (filled in by the billing work).
SELECT 1;
