using TorchSharp;
using WeakSeg.Models.Vit;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods;

/// <summary>
/// The part every <see cref="IWsssMethod"/> adapter shares: it owns the model built from its config record and reads the class
/// count and backbone off that record. A method adds its registry name, loss and maps.
/// </summary>
public abstract class WsssMethodBase<TConfig, TModel> : IWsssMethod
    where TConfig : class, IMethodConfig
    where TModel : nn.Module
{
    protected WsssMethodBase(TConfig config, TModel model)
    {
        TypedModel = model;
        MethodConfig = config;
    }

    public abstract string Name { get; }
    public TConfig MethodConfig { get; }
    public IMethodConfig Config => MethodConfig;
    public int NumClasses => MethodConfig.NumClasses;
    public VitConfig? Backbone => MethodConfig.BackboneConfig;
    public nn.Module Model => TypedModel;

    /// <summary>The model as its own type.</summary>
    protected TModel TypedModel { get; }

    public abstract LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context);

    /// <summary>The backbone's rate multiplier: a hybrid stem's CNN may train slower (<see cref="VitConfig.StemLearningRateScale"/>).</summary>
    public virtual double LearningRateScale(string parameterName) => Backbone is { } vit ? HybridEmbed.LearningRateScale(vit, parameterName) : 1.0;

    public abstract Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind);

    public void Dispose() => TypedModel.Dispose();
}
