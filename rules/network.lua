-- rules/network.lua: features per stage and the PlainConvUNet architecture entry of the
-- plans (nnunet-behaviour.md §5.1, §6, §13.1). Pure (R30).
local M = { name = "network", version = 2 }

M.arch_keys = {
  "n_stages", "features_per_stage", "conv_op", "kernel_sizes", "strides", "n_conv_per_stage",
  "n_conv_per_stage_decoder", "conv_bias", "norm_op", "norm_op_kwargs", "dropout_op",
  "dropout_op_kwargs", "nonlin", "nonlin_kwargs",
}
-- ResidualEncoderUNet (residual-encoder planners, §5.8): blocks per encoder stage instead
M.arch_keys_residual = {
  "n_stages", "features_per_stage", "conv_op", "kernel_sizes", "strides", "n_blocks_per_stage",
  "n_conv_per_stage_decoder", "conv_bias", "norm_op", "norm_op_kwargs", "dropout_op",
  "dropout_op_kwargs", "nonlin", "nonlin_kwargs",
}

-- F_i = min(base * 2^i, max) for i = 0 .. n-1
function M.features_per_stage(n_stages, dim, cfg)
  local maxf = dim == 2 and cfg.max_features_2d or cfg.max_features_3d
  local out = {}
  for i = 1, n_stages do
    out[i] = util.to_int(math.min(maxf, cfg.base_num_features * (1 << (i - 1))))
  end
  return out
end

-- dim: 2 or 3; p: result of patch.plan (topology, features, n_conv_enc, n_conv_dec)
-- returns the plans' "architecture" object (ordered)
function M.architecture(dim, p, cfg)
  local top = p.topology
  local residual = cfg.n_blocks_per_stage_encoder and true or false
  local arch = util.ordered(residual and M.arch_keys_residual or M.arch_keys, {
    n_stages = #top.strides,
    features_per_stage = util.ints(p.features),
    conv_op = "torch.nn.modules.conv.Conv" .. dim .. "d",
    kernel_sizes = util.map(top.kernel_sizes, util.ints),
    strides = util.map(top.strides, util.ints),
    n_conv_per_stage = (not residual) and util.ints(p.n_conv_enc) or nil,
    n_blocks_per_stage = residual and util.ints(p.n_conv_enc) or nil,
    n_conv_per_stage_decoder = util.ints(p.n_conv_dec),
    conv_bias = cfg.conv_bias,
    norm_op = "torch.nn.modules.instancenorm.InstanceNorm" .. dim .. "d",
    norm_op_kwargs = util.ordered({ "eps", "affine" }, { eps = cfg.norm_eps + 0.0, affine = cfg.norm_affine }),
    dropout_op = util.null,
    dropout_op_kwargs = util.null,
    nonlin = cfg.nonlin,
    nonlin_kwargs = util.ordered({ "inplace" }, { inplace = cfg.nonlin_inplace }),
  })
  return util.ordered({ "network_class_name", "arch_kwargs", "_kw_requires_import" }, {
    network_class_name = cfg.network_class_name,
    arch_kwargs = arch,
    _kw_requires_import = { "conv_op", "norm_op", "dropout_op", "nonlin" },
  })
end

return M
