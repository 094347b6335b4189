DROP INDEX clients_name_unique;
