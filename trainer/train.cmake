# cg_train (included from trainer/CMakeLists.txt): the training loop, checkpoint content, --plan, export;
# executables cgtrain and cgexport.
add_library(cg_train train_grads.cpp train_model.cpp train_step.cpp train_loop.cpp train_plan.cpp
            train_export.cpp checkpoint.cpp)
target_link_libraries(cg_train PUBLIC cg_common cg_config cg_train_infra cg_optim cg_data cg_dist cg_model cg_lora
                      cg_peft PRIVATE nlohmann_json::nlohmann_json)
cg_use_torch(cg_train)

add_executable(cgtrain cgtrain.cpp)
target_link_libraries(cgtrain PRIVATE cg_train)
cg_use_torch(cgtrain)

add_executable(cgexport cgexport.cpp)
target_link_libraries(cgexport PRIVATE cg_train)
cg_use_torch(cgexport)
