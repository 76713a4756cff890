using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WeakSeg.Training;

/// <summary>Optimizer parameter groups (AdamW or SGD): weight decay on weight matrices only. No decay on biases, 1-D tensors (norm weights)
/// and named tokens/embeddings (DINO get_params_groups + timm no_weight_decay: pos_embed, cls_token).</summary>
public static class ParameterGroups
{
    /// <summary>True when <paramref name="name"/>/<paramref name="parameter"/> must not be weight-decayed.</summary>
    public static bool IsExemptFromWeightDecay(string name, Parameter parameter, IReadOnlyCollection<string> noWeightDecayNames)
    {
        if (parameter.dim() <= 1) return true;
        var last = name[(name.LastIndexOf('.') + 1)..];
        return last == "bias" || noWeightDecayNames.Contains(last);
    }

    /// <summary>Splits parameters (order preserved) into (decayed, exempt).</summary>
    public static (List<(string Name, Parameter Parameter)> Decay, List<(string Name, Parameter Parameter)> NoDecay) Split(
        IEnumerable<(string Name, Parameter Parameter)> parameters, IReadOnlyCollection<string> noWeightDecayNames)
    {
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (n, p) in parameters)
            (IsExemptFromWeightDecay(n, p, noWeightDecayNames) ? noDecay : decay).Add((n, p));
        return (decay, noDecay);
    }

    /// <summary>The optimizer <paramref name="options"/> asks for (<see cref="TrainerOptions.Optimizer"/>): <see cref="CreateAdamW"/> or <see cref="CreateSgd"/>.</summary>
    public static OptimizerSetup Create(IEnumerable<(string Name, Parameter Parameter)> parameters, TrainerOptions options,
        Func<string, double>? learningRateScale = null) => options.Optimizer switch
    {
        OptimizerKind.Sgd => CreateSgd(parameters, options, learningRateScale),
        _ => CreateAdamW(parameters, options, learningRateScale),
    };

    /// <summary>AdamW over <paramref name="parameters"/>: one group per (learning-rate scale, decay or not), in order of first
    /// appearance — with the default scale 1 that is [decay (wd = options.WeightDecay), no-decay (wd = 0)]; empty groups are left out.
    /// Learning rates start at the schedule's step-0 value × scale; the trainer sets them every step.</summary>
    /// <param name="learningRateScale">per-parameter multiplier of the scheduled rate (e.g. 0.1 for a pretrained encoder); null = 1 for all</param>
    public static OptimizerSetup CreateAdamW(IEnumerable<(string Name, Parameter Parameter)> parameters, TrainerOptions options,
        Func<string, double>? learningRateScale = null)
    {
        var (keys, members) = Group(parameters, options, learningRateScale);
        double lr0 = LearningRateSchedule.At(options, 0);
        var groups = keys.Select((k, i) => new AdamW.ParamGroup(members[i].Select(m => m.Parameter).ToList(), lr0 * k.Scale,
            options.Beta1, options.Beta2, options.Eps, k.Decay ? options.WeightDecay : 0.0, false, false)).ToList();
        var optimizer = new ScalarSafe.AdamW(groups, lr0, options.Beta1, options.Beta2, options.Eps, options.WeightDecay);   // TorchSharp's update, Scalars held
        return Setup(optimizer, keys, members, options);
    }

    /// <summary>SGD with momentum <see cref="TrainerOptions.Momentum"/> (PyTorch semantics: g ← g + wd·p; buf ← g at the first step,
    /// else momentum·buf + g; p ← p − lr·buf; no dampening, no Nesterov), grouped exactly like <see cref="CreateAdamW"/>:
    /// one group per (learning-rate scale, decay or not), weight decay <see cref="TrainerOptions.WeightDecay"/> on the decay groups only.</summary>
    public static OptimizerSetup CreateSgd(IEnumerable<(string Name, Parameter Parameter)> parameters, TrainerOptions options,
        Func<string, double>? learningRateScale = null)
    {
        var (keys, members) = Group(parameters, options, learningRateScale);
        double lr0 = LearningRateSchedule.At(options, 0);
        var groups = keys.Select((k, i) => new SGD.ParamGroup(members[i].Select(m => m.Parameter).ToList(), lr0 * k.Scale,
            options.Momentum, 0.0, k.Decay ? options.WeightDecay : 0.0, false, false)).ToList();
        var optimizer = new ScalarSafe.SGD(groups, lr0, options.Momentum, 0.0, options.WeightDecay);
        return Setup(optimizer, keys, members, options);
    }

    static (List<(double Scale, bool Decay)> Keys, List<List<(string Name, Parameter Parameter)>> Members) Group(
        IEnumerable<(string Name, Parameter Parameter)> parameters, TrainerOptions options, Func<string, double>? learningRateScale)
    {
        var keys = new List<(double Scale, bool Decay)>();
        var members = new List<List<(string Name, Parameter Parameter)>>();
        foreach (var (name, p) in parameters)
        {
            double scale = learningRateScale?.Invoke(name) ?? 1.0;
            if (!(scale >= 0) || double.IsInfinity(scale)) throw new WeakSegException($"learning-rate scale of parameter '{name}' must be a finite number ≥ 0 (got {scale}).");
            var key = (scale, options.DecayAllParameters || !IsExemptFromWeightDecay(name, p, options.NoWeightDecayNames));
            int i = keys.IndexOf(key);
            if (i < 0) { keys.Add(key); members.Add([]); i = keys.Count - 1; }
            members[i].Add((name, p));
        }
        if (keys.Count == 0) throw new WeakSegException("the model has no trainable parameters.");
        return (keys, members);
    }

    static OptimizerSetup Setup(OptimizerHelper optimizer, List<(double Scale, bool Decay)> keys,
        List<List<(string Name, Parameter Parameter)>> members, TrainerOptions options) =>
        new(optimizer, keys.Select(k => k.Scale).ToArray(), keys.Select(k => k.Decay ? options.WeightDecay : 0.0).ToArray(),
            members.Select(m => (IReadOnlyList<string>)m.Select(x => x.Name).ToArray()).ToArray());
}

/// <summary>An optimizer (AdamW or SGD) and, per parameter group (same order as optimizer.ParamGroups), its learning-rate scale,
/// weight decay and parameter names.</summary>
public sealed record OptimizerSetup(OptimizerHelper Optimizer, IReadOnlyList<double> LearningRateScales, IReadOnlyList<double> WeightDecays,
    IReadOnlyList<IReadOnlyList<string>> GroupParameterNames) : IDisposable
{
    /// <summary>Sets every group's rate to <paramref name="scheduledLr"/> × its scale.</summary>
    public void SetLearningRate(double scheduledLr)
    {
        int i = 0;
        foreach (var g in Optimizer.ParamGroups) g.LearningRate = scheduledLr * LearningRateScales[i++];
    }

    public void Dispose() => Optimizer.Dispose();
}
