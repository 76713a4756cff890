using System.CommandLine;
using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Commands;

/// <summary>
/// The options that set any field of a training recipe, shared by `train` and `pipeline`: <c>--set SECTION.FIELD=VALUE</c> (repeatable)
/// and <c>--fusion NAME</c>, an alias of <c>--set model.fusion=NAME</c>. Method knobs travel this way, so no command names a method.
/// </summary>
internal sealed class RecipeOptions
{
    readonly Option<string[]> _set = new("--set")
    {
        Description = "Set one recipe field, SECTION.FIELD=VALUE, after --config (repeatable), e.g. --set model.fusion=mean-sum --set trainer.steps=200.",
        AllowMultipleArgumentsPerToken = false,
    };

    readonly Option<string?> _fusion = new("--fusion") { Description = "Alias of --set model.fusion=NAME (head weighting, for a method that has one: aaf, mean-sum or fixed-random)." };

    public IEnumerable<Option> All => [_set, _fusion];

    /// <summary>The recipe with every --set (in order), then --fusion, laid over it.</summary>
    public TrainRecipe Apply(TrainRecipe recipe, ParseResult parseResult)
    {
        foreach (var assignment in parseResult.GetValue(_set) ?? []) recipe = recipe.With(assignment);
        if (parseResult.GetValue(_fusion) is { } fusion) recipe = recipe.With("model.fusion=" + fusion);
        return recipe;
    }
}
