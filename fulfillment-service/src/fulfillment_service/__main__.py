from fulfillment_service.main import run

run()
