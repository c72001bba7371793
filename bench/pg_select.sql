\set s random(1, 20000)
SELECT * FROM bench_orders WHERE seq = :s;
