# The churn and LTV models (src/insights/models, docs/models.md): features and labels from the
# metrics layer (src/metrics/model_features), XGBoost through its C API (Debian libxgboost-dev),
# the logistic-regression baseline, exact TreeSHAP and the model registry.
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h REQUIRED)
find_library(XGBOOST_LIBRARY xgboost REQUIRED)
add_library(tally_models STATIC
  src/metrics/model_features.cpp
  src/insights/models/evaluation.cpp
  src/insights/models/features.cpp
  src/insights/models/logistic.cpp
  src/insights/models/registry.cpp
  src/insights/models/training.cpp
  src/insights/models/xgb.cpp
)
target_include_directories(tally_models SYSTEM PRIVATE ${XGBOOST_INCLUDE_DIR})
target_link_libraries(tally_models PUBLIC tally_insights tally_metrics tally_core ${XGBOOST_LIBRARY})
