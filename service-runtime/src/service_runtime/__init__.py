"""What the order service and the fulfillment service share at run time (the carrier mock stands for a third party
and shares nothing): JSON logging and serving (`serving`), the liveness route (`liveness`), reading the Dapr SDK's
errors and inserting if absent (`dapr_state`)."""
