using WeakSeg.Models.Vit;

namespace WeakSeg.Methods;

/// <summary>
/// What every method configuration record has in common: the class count, the backbone it builds and a validity check.
/// Lets <see cref="WsssMethodBase{TConfig, TModel}"/> and <see cref="Baselines.ClassifierBaselineModel{TConfig}"/> read them.
/// </summary>
public interface IMethodConfig
{
    /// <summary>Foreground classes K.</summary>
    int NumClasses { get; }

    /// <summary>The backbone configuration actually built.</summary>
    VitConfig BackboneConfig { get; }

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem.</summary>
    void EnsureValid();
}
